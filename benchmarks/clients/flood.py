"""The flood figure's two clients: a flooder, and a quiet client timing its echoes.

``flood``: one connection sends 63-byte text frames as fast as the client can for
``seconds``, throwing away whatever comes back (a task reads it: unread, the client library
would stop reading its socket after a few frames and never see a close); if the server
closes it, it reconnects at once and goes on (an attacker would). It reports frames sent,
connections made and the close codes it got.

``latency``: one connection does ``round_trips`` echo round trips, one every ``interval``
seconds (a person's pace, under the default inbound limits), and reports each round trip's
time; the figure is the median.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from benchmarks.clients.connections import open_one, round_trip

PAYLOAD = "benchmark-flood-" + "x" * 47  # 63 bytes of text


async def run_flood(url: str, seconds: float) -> dict[str, Any]:
    sent = connections = 0
    codes: dict[str, int] = {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ws = await open_one(url)
        connections += 1
        if connections == 1:
            print("flooding", flush=True)  # the figure starts timing the quiet client now
        discard = asyncio.create_task(_discard(ws))
        try:
            while True:
                for _ in range(100):
                    await ws.send(PAYLOAD)
                sent += 100
                # send() rarely waits: give the client's reader a turn, or a close frame
                # from the server would go unnoticed while the kernel buffers the flood
                await asyncio.sleep(0)
                if time.monotonic() >= deadline:
                    break
        except ConnectionClosed:
            code = str(ws.close_code)
            codes[code] = codes.get(code, 0) + 1
        finally:
            discard.cancel()
            with contextlib.suppress(Exception):
                ws.transport.abort()  # no closing handshake
    return {
        "frames": sent,
        "connections": connections,
        "close_codes": codes,
        "rate": sent / seconds,
    }


async def _discard(ws: ClientConnection) -> None:
    with contextlib.suppress(ConnectionClosed):
        async for _ in ws:
            pass


async def run_latency(url: str, round_trips: int, interval: float) -> dict[str, Any]:
    ws = await open_one(url)
    times: list[float] = []
    try:
        for _ in range(round_trips):
            started = time.perf_counter()
            await round_trip(ws, PAYLOAD)
            took = time.perf_counter() - started
            times.append(took)
            await asyncio.sleep(max(0.0, interval - took))
    finally:
        await ws.close()
    return {"median": statistics.median(times), "times": times}
