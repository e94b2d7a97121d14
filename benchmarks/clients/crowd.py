"""Ten thousand idle connections in one room, then one message to all of them.

Warm-up as in ``idle``: a few connections open, say something and close. Then the server's
memory is read, ``count`` connections open on the room path (each joins the room), the
server settles, and its memory is read again: the growth over ``count`` is the figure. Then
the first connection sends one frame, the server sends it to the whole room, and the time from
that send until every connection has it is the second figure.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from websockets.asyncio.client import ClientConnection

from benchmarks.clients.connections import close_many, open_many
from benchmarks.procstat import read_memory

PAYLOAD = "crowd-everyone"


async def _until(ws: ClientConnection, payload: str) -> None:
    while await ws.recv() != payload:
        pass


async def run_crowd(
    url: str, count: int, warmup: int, settle: float, server_pid: int, time_limit: float
) -> dict[str, Any]:
    async with asyncio.timeout(time_limit):
        warm = await open_many(url, warmup)
        try:
            await warm[0].send("crowd-warm-up")
            await asyncio.gather(*(_until(ws, "crowd-warm-up") for ws in warm))
        finally:
            await close_many(warm)
        await asyncio.sleep(settle)
        before = read_memory(server_pid)
        sockets = await open_many(url, count)
        try:
            await asyncio.sleep(settle)
            after = read_memory(server_pid)
            waiting = [asyncio.create_task(_until(ws, PAYLOAD)) for ws in sockets]
            await asyncio.sleep(0)  # every receiver waits before the send
            started = time.perf_counter()
            await sockets[0].send(PAYLOAD)
            await asyncio.gather(*waiting)
            delivered = time.perf_counter() - started
        finally:
            await close_many(sockets)
    return {
        "count": count,
        "rss_before": before.rss,
        "rss_after": after.rss,
        "rss_per_connection": (after.rss - before.rss) / count,
        "pss_per_connection": (after.pss - before.pss) / count,
        "delivery_s": delivered,
    }
