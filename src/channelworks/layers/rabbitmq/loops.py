"""Calls from another event loop, run on the layer's home loop.

Rules of this file:
- the layer's connection, reader and local channels belong to its home loop; a call made on
  another loop (``async_to_sync`` in a thread) is handed to the home loop and awaited from the
  calling loop;
- a home loop that does not start such a call within ``patience`` seconds is blocked (most
  often by the very thread that waits for the call: ``thread.join()`` on the home loop, a
  deadlock). The call is then taken back before it started, so nothing of it is done, and
  raises ``LoopBlocked`` (a ``RuntimeError``, as channels_rabbitmq raises for any other loop)
  instead of waiting forever. Once the home loop has started the call, it is awaited to the end.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar, cast

from channelworks.layers.rabbitmq.errors import LoopBlocked

T = TypeVar("T")


async def run_at(
    home: asyncio.AbstractEventLoop,
    work: Coroutine[Any, Any, T],
    *,
    patience: float,
    operation: str,
    target: str,
) -> T:
    """Run ``work`` on ``home`` and wait for it here; ``LoopBlocked`` if ``home`` does not start
    it within ``patience`` seconds (then ``work`` never runs)."""
    here = asyncio.get_running_loop()
    claim = threading.Lock()  # taken by whoever decides first: the home loop or the timeout
    started: asyncio.Future[None] = here.create_future()

    def mark_started() -> None:
        if not started.done():
            started.set_result(None)

    async def run() -> T | None:
        if not claim.acquire(blocking=False):
            work.close()  # given up on by the caller: never started
            return None
        here.call_soon_threadsafe(mark_started)  # the caller is waiting: its loop runs
        return await work

    done = asyncio.wrap_future(asyncio.run_coroutine_threadsafe(run(), home))
    try:
        await asyncio.wait_for(asyncio.shield(started), patience)
    except TimeoutError:
        if claim.acquire(blocking=False):
            work.close()
            done.cancel()
            raise LoopBlocked(operation, target, patience) from None
    except BaseException:
        if claim.acquire(blocking=False):  # cancelled before the call started: it never will
            work.close()
        done.cancel()  # cancelled meanwhile: so is the call, as a call on the home loop
        raise
    return cast(T, await done)  # None only when the caller gave up, which it did not


__all__ = ["run_at"]
