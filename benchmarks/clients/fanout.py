"""Chat-room fan-out: many clients in one room, one of them sends, everyone receives.

Per round, the first client sends ``messages`` frames back to back; the round ends when every
client (the sender included) has received every one of them. Frames carry the round number,
so a stray frame from an earlier round is never counted. A pass is ``rounds`` rounds; its
figure is deliveries per second: ``clients * messages * rounds`` over the summed wall time
from each round's first send to its last delivery.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from websockets.asyncio.client import ClientConnection

from benchmarks.clients.connections import close_many, open_many
from benchmarks.procstat import read_cpu_seconds


async def _receive_round(ws: ClientConnection, tag: str, messages: int) -> None:
    got = 0
    while got < messages:
        frame = await ws.recv()
        if isinstance(frame, str) and frame.startswith(tag):
            got += 1


async def _run_round(sockets: list[ClientConnection], number: int, messages: int) -> float:
    """One round; returns its wall time in seconds."""
    tag = f"round-{number}:"
    receivers = [asyncio.create_task(_receive_round(ws, tag, messages)) for ws in sockets]
    try:
        await asyncio.sleep(0)  # let every receiver start waiting before the first send
        started = time.perf_counter()
        for index in range(messages):
            await sockets[0].send(f"{tag}{index}")
        await asyncio.gather(*receivers)
        return time.perf_counter() - started
    finally:
        for task in receivers:
            task.cancel()
        await asyncio.gather(*receivers, return_exceptions=True)


async def run_fanout(
    url: str,
    clients: int,
    messages: int,
    rounds: int,
    warmup: int,
    passes: int,
    server_pid: int,
    time_limit: float,
) -> dict[str, Any]:
    sockets = await open_many(url, clients)
    try:
        async with asyncio.timeout(time_limit):
            await _run_round(sockets, 0, warmup)
            rates: list[float] = []
            cpu_before = read_cpu_seconds(server_pid)
            client_before = time.process_time()
            for number in range(passes):
                elapsed = 0.0
                for round_number in range(rounds):
                    elapsed += await _run_round(
                        sockets, 1 + number * rounds + round_number, messages
                    )
                rates.append(clients * messages * rounds / elapsed)
            server_cpu = read_cpu_seconds(server_pid) - cpu_before
            client_cpu = time.process_time() - client_before
    finally:
        await close_many(sockets)
    return {
        "rates": rates,
        "operations": clients * messages * rounds * passes,
        "server_cpu_s": server_cpu,
        "client_cpu_s": client_cpu,
    }
