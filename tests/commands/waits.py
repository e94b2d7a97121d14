"""Bounded waiting for in-process tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

#: seconds any single wait may take before the test fails
TIMEOUT = 5.0


async def wait_until(condition: Callable[[], bool]) -> None:
    """Let the loop run until ``condition()`` holds; fail after ``TIMEOUT`` seconds.

    Polled: what makes it true includes sync handlers, in other threads.
    """
    async with asyncio.timeout(TIMEOUT):
        while True:
            if condition():
                return
            await asyncio.sleep(0.005)
