"""A reconnect storm: every client connects at once, each with its session cookie.

All ``keys`` connect at the same moment (no batches); the figure is the time from the start
until the last handshake has completed. A connection the server refused or that timed out is
counted in ``failed`` (then the time is not a figure: the caller reports an error).
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from benchmarks.clients.connections import close_many

OPEN_TIMEOUT = 60.0


async def _open(url: str, key: str) -> ClientConnection:
    return await connect(
        url,
        compression=None,
        ping_interval=None,
        open_timeout=OPEN_TIMEOUT,
        close_timeout=2,
        additional_headers=[("Cookie", f"sessionid={key}")],
    )


def read_keys(keys_file: str) -> list[str]:
    """The session keys ``benchmarks.storm_setup`` wrote."""
    keys: list[str] = json.loads(Path(keys_file).read_text())
    return keys


async def run_storm(url: str, keys: list[str], time_limit: float) -> dict[str, Any]:
    async with asyncio.timeout(time_limit):
        started = time.perf_counter()
        found = await asyncio.gather(*(_open(url, key) for key in keys), return_exceptions=True)
        seconds = time.perf_counter() - started
        sockets = [ws for ws in found if isinstance(ws, ClientConnection)]
        errors = [repr(error) for error in found if not isinstance(error, ClientConnection)]
        await close_many(sockets)
    return {
        "count": len(keys),
        "connected": len(sockets),
        "failed": len(errors),
        "first_error": errors[0] if errors else None,
        "seconds": seconds,
    }
