"""Server memory per idle connection.

Warm-up first: a few connections are opened, used once and closed, so the server's one-off
costs (imports done lazily, caches, the first task of each kind) are paid before the baseline.
The warm-up is kept small on purpose: closing many sockets leaves free memory in the server's
allocator that the measured sockets would then reuse, hiding their cost.

Then ``count`` connections are opened and each does one echo round trip (so its consumer is
fully set up), the server is left to settle, and its ``VmRSS`` and ``Pss`` are read again.
"""

from __future__ import annotations

import asyncio
from typing import Any

from benchmarks.clients.connections import close_many, open_many, round_trip
from benchmarks.procstat import read_memory

PAYLOAD = "idle-hello"


async def run_idle(
    url: str, count: int, warmup: int, settle: float, server_pid: int, time_limit: float
) -> dict[str, Any]:
    async with asyncio.timeout(time_limit):
        warm = await open_many(url, warmup)
        try:
            await asyncio.gather(*(round_trip(ws, PAYLOAD) for ws in warm))
        finally:
            await close_many(warm)
        await asyncio.sleep(settle)
        before = read_memory(server_pid)
        sockets = await open_many(url, count)
        try:
            await asyncio.gather(*(round_trip(ws, PAYLOAD) for ws in sockets))
            await asyncio.sleep(settle)
            after = read_memory(server_pid)
        finally:
            await close_many(sockets)
    return {
        "count": count,
        "rss_before": before.rss,
        "rss_after": after.rss,
        "pss_before": before.pss,
        "pss_after": after.pss,
        "rss_per_connection": (after.rss - before.rss) / count,
        "pss_per_connection": (after.pss - before.pss) / count,
    }
