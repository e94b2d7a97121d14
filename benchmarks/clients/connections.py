"""Opening and closing many WebSocket client connections, bounded in time.

Compression is off (``compression=None``) and client pings are off: permessage-deflate keeps a
zlib context of about 100 KiB per socket on each side, which would drown the framework's own
cost in both the throughput and the memory figures.
"""

from __future__ import annotations

import asyncio
import contextlib

from websockets.asyncio.client import ClientConnection, connect

OPEN_TIMEOUT = 20.0
CLOSE_TIMEOUT = 10.0


async def open_one(url: str) -> ClientConnection:
    return await connect(
        url,
        compression=None,
        ping_interval=None,
        open_timeout=OPEN_TIMEOUT,
        close_timeout=2,
        max_size=2**20,
    )


async def open_many(url: str, count: int, batch: int = 100) -> list[ClientConnection]:
    """Open ``count`` connections, ``batch`` at a time; close them all if one fails."""
    opened: list[ClientConnection] = []
    try:
        for start in range(0, count, batch):
            size = min(batch, count - start)
            async with asyncio.timeout(OPEN_TIMEOUT * 2):
                opened.extend(await asyncio.gather(*(open_one(url) for _ in range(size))))
    except BaseException:
        await close_many(opened)
        raise
    return opened


async def close_many(connections: list[ClientConnection]) -> None:
    """Close every connection; give up (abort the sockets) after ``CLOSE_TIMEOUT``."""
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT):
            await asyncio.gather(*(ws.close() for ws in connections), return_exceptions=True)
    except TimeoutError:
        for ws in connections:
            with contextlib.suppress(Exception):
                ws.transport.abort()


async def round_trip(ws: ClientConnection, payload: str) -> None:
    """Send ``payload`` and wait for it to come back unchanged."""
    await ws.send(payload)
    reply = await ws.recv()
    if reply != payload:
        raise RuntimeError(f"echo mismatch: sent {payload!r}, got {reply!r}")
