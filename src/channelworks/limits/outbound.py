"""The bound on what waits for a slow client: how long a send may wait for the server.

Under ASGI the application cannot see a socket's buffer, but a server with flow control
(uvicorn) makes ``send()`` wait while its write buffer is full: a client that does not read
makes the consumer's sends wait. So the bound is on time spent waiting in ``send`` and on the
number of sends waiting at once. ``SendWatch`` is one connection's bookkeeping (pure, clock
given); ``Watchdog`` looks at every watch of an event loop a few times per ``send_timeout``
and trips those stuck too long.

Rules:
- a watch is tripped at most once; tripping cancels every task waiting in a send of that
  connection (the consumer turns that cancellation into ``SlowClient``: close 1013);
- the per-send cost is two counter updates: no timer and no task lookup per send. The
  tasks to cancel are found when a watch trips, by walking the await chain of the loop's
  tasks to a send coroutine (``SEND_CODES``) of the watch's consumer: rare, and done once
  per sweep for all the watches tripped in it. The price of no timer is precision: a stuck
  send is noticed between ``send_timeout`` and ``send_timeout`` plus a quarter of it, and
  more than ``max_pending_sends`` waiting at the next sweep (at most a second later).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import weakref
from collections.abc import Iterable
from types import CodeType

from channelworks.limits.logs import limit_log, logger
from channelworks.limits.stats import stats

#: the code of the coroutines that send for a consumer (``self`` is the consumer); the
#: consumer runtime adds them
SEND_CODES: set[CodeType] = set()


class SendWatch:
    """One connection's sends: how many wait now, how many finished, since when stuck."""

    __slots__ = (
        "finished",
        "max_pending",
        "owner",
        "seen",
        "since",
        "started",
        "timeout",
        "tripped",
    )

    def __init__(
        self, timeout: float | None, max_pending: int | None, owner: object = None
    ) -> None:
        self.timeout = timeout
        #: an int either way: the send path compares without a None check
        self.max_pending = sys.maxsize if max_pending is None else max_pending
        #: the consumer whose sends these are (the ``self`` of its send coroutines)
        self.owner = owner
        # Two counters, one per end of a send: the send path adds 1 to each, nothing else.
        self.started = 0
        self.finished = 0
        self.tripped = False
        self.seen = 0  # ``finished`` at the last look
        self.since: float | None = None  # when a look first found the sends stuck

    @property
    def pending(self) -> int:
        """Sends started and not finished."""
        return self.started - self.finished

    def stuck(self, now: float) -> bool:
        """Look at the sends at ``now``: whether one has waited ``timeout`` with none
        finishing (measured from the first look that found them waiting)."""
        pending = self.started - self.finished
        if pending == 0 or self.finished != self.seen:
            self.seen = self.finished
            self.since = now if pending else None
            return False
        if self.since is None:
            self.since = now
            return False
        return self.timeout is not None and now - self.since >= self.timeout

    def too_many(self) -> bool:
        """Whether a new send would make more than ``max_pending`` wait at once."""
        return self.pending >= self.max_pending

    def trip(self, why: str) -> bool:
        """Mark the connection as too slow, count it and log it; false if it already was.

        The caller then cancels its waiting sends (``cancel_sends``)."""
        if self.tripped:
            return False
        self.tripped = True
        stats.slow_closed += 1
        limit_log.event(
            logger,
            "slow",
            logging.WARNING,
            "Closed {count} WebSocket(s) with 1013: {why} (stats.slow_closed={total})",
            why=why,
            total=stats.slow_closed,
        )
        return True


def cancel_sends(watches: Iterable[SendWatch]) -> int:
    """Cancel every task of the running loop waiting in a send of these watches' consumers
    (never the current task); return how many were cancelled."""
    owners = {id(watch.owner) for watch in watches if watch.owner is not None}
    current = asyncio.current_task()
    cancelled = 0
    for task in asyncio.all_tasks():
        if task is not current and not task.done() and _sends_for(task, owners):
            task.cancel()
            cancelled += 1
    return cancelled


def _sends_for(task: asyncio.Task[object], owners: set[int]) -> bool:
    """Whether ``task`` is waiting inside a send coroutine of one of ``owners``."""
    awaited: object = task.get_coro()
    for _ in range(50):  # an await chain is short; never loop on a strange one
        code = getattr(awaited, "cr_code", None) or getattr(awaited, "gi_code", None)
        if code is None:
            return False
        if code in SEND_CODES:
            frame = getattr(awaited, "cr_frame", None)
            if frame is not None and id(frame.f_locals.get("self")) in owners:
                return True
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
    return False


class Watchdog:
    """Every ``SendWatch`` of one event loop, looked at every ``tick`` seconds while any."""

    def __init__(self) -> None:
        # No reference to the loop: the loop is the key of ``_watchdogs``, a weak one.
        self.watches: set[SendWatch] = set()
        self.tick = 1.0
        self._timer: asyncio.TimerHandle | None = None

    def add(self, watch: SendWatch) -> None:
        self.watches.add(watch)
        if watch.timeout is not None:
            self.tick = min(self.tick, max(watch.timeout / 4, 0.01))
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.tick, self._sweep)

    def discard(self, watch: SendWatch) -> None:
        self.watches.discard(watch)
        if not self.watches and self._timer is not None:
            # the timer references the loop: a pending one would keep a closed loop alive
            self._timer.cancel()
            self._timer = None
            self.tick = 1.0

    def _sweep(self) -> None:
        self._timer = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        tripped: list[SendWatch] = []
        for watch in list(self.watches):
            if watch.tripped:
                continue
            if watch.stuck(now):
                why = f"a send waited over {watch.timeout} s for the client to read"
            elif watch.too_many():
                why = f"over max_pending_sends={watch.max_pending} sends waiting"
            else:
                continue
            if watch.trip(why):
                tripped.append(watch)
        if tripped:
            cancel_sends(tripped)
        if self.watches:
            self._timer = loop.call_later(self.tick, self._sweep)
        else:
            self.tick = 1.0


_watchdogs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Watchdog] = (
    weakref.WeakKeyDictionary()
)


def watchdog() -> Watchdog:
    """The running event loop's watchdog."""
    loop = asyncio.get_running_loop()
    found = _watchdogs.get(loop)
    if found is None:
        found = _watchdogs[loop] = Watchdog()
    return found


__all__ = ["SEND_CODES", "SendWatch", "Watchdog", "cancel_sends", "logger", "watchdog"]
