"""Echo load: N connections, each doing round trips one after another, all concurrently.

The connect phase and a warm-up pass are not timed. Each timed pass is every connection doing
``round_trips`` round trips; its figure is round trips per second of wall time. The server's
CPU seconds over the timed passes are reported too (``server_cpu_s``), so a run where the
client, not the server, was the bottleneck can be told apart.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from benchmarks.clients.connections import close_many, open_many, round_trip
from benchmarks.procstat import read_cpu_seconds

PAYLOAD = "benchmark-echo-" + "x" * 48  # 63 bytes of text


async def _connection_loop(ws: Any, round_trips: int) -> None:
    for _ in range(round_trips):
        await round_trip(ws, PAYLOAD)


async def run_echo(
    url: str,
    connections: int,
    round_trips: int,
    warmup: int,
    passes: int,
    server_pid: int,
    time_limit: float,
) -> dict[str, Any]:
    sockets = await open_many(url, connections)
    try:
        async with asyncio.timeout(time_limit):
            await asyncio.gather(*(_connection_loop(ws, warmup) for ws in sockets))
            rates: list[float] = []
            cpu_before = read_cpu_seconds(server_pid)
            client_before = time.process_time()
            for _ in range(passes):
                started = time.perf_counter()
                await asyncio.gather(*(_connection_loop(ws, round_trips) for ws in sockets))
                rates.append(connections * round_trips / (time.perf_counter() - started))
            server_cpu = read_cpu_seconds(server_pid) - cpu_before
            client_cpu = time.process_time() - client_before
    finally:
        await close_many(sockets)
    operations = connections * round_trips * passes
    return {
        "rates": rates,
        "operations": operations,
        "server_cpu_s": server_cpu,
        "client_cpu_s": client_cpu,
    }
