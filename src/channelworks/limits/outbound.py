"""The bound on what waits for a slow client: how long a send may wait for the server.

Under ASGI the application cannot see a socket's buffer, but a server with flow control
(uvicorn) makes ``send()`` wait while its write buffer is full: a client that does not read
makes the consumer's sends wait. So the bound is on time spent waiting in ``send`` and on the
number of sends waiting at once. ``SendWatch`` is one connection's bookkeeping (pure, clock
given); ``Watchdog`` looks at every watch of an event loop a few times per ``send_timeout``
and trips those stuck too long.

Rules:
- a watch is tripped at most once; tripping cancels the task that last started a send on the
  connection (the consumer turns that cancellation into ``SlowClient``: close 1013);
- the per-send cost is two counter updates and one ``current_task()``: no timer per send.
  The price is precision: a stuck send is noticed between ``send_timeout`` and
  ``send_timeout`` plus a quarter of it (one sweep) after it began.
"""

from __future__ import annotations

import asyncio
import weakref

from channelworks.limits.logs import limit_log, logger
from channelworks.limits.stats import stats


class SendWatch:
    """One connection's sends: how many wait now, how many finished, since when stuck."""

    __slots__ = ("max_pending", "pending", "seen", "sent", "since", "task", "timeout", "tripped")

    def __init__(self, timeout: float | None, max_pending: int | None) -> None:
        self.timeout = timeout
        self.max_pending = max_pending
        self.pending = 0  # sends started and not finished
        self.sent = 0  # sends finished
        self.task: asyncio.Task[object] | None = None  # the task that last started a send
        self.tripped = False
        self.seen = 0  # ``sent`` at the last look
        self.since: float | None = None  # when a look first found the sends stuck

    def stuck(self, now: float) -> bool:
        """Look at the sends at ``now``: whether one has waited ``timeout`` with none
        finishing (measured from the first look that found them waiting)."""
        if self.pending == 0 or self.sent != self.seen:
            self.seen = self.sent
            self.since = now if self.pending else None
            return False
        if self.since is None:
            self.since = now
            return False
        return self.timeout is not None and now - self.since >= self.timeout

    def too_many(self) -> bool:
        """Whether a new send would make more than ``max_pending`` wait at once."""
        return self.max_pending is not None and self.pending >= self.max_pending

    def trip(self, why: str) -> None:
        """Mark the connection as too slow (once), count it, and cancel its sending task."""
        if self.tripped:
            return
        self.tripped = True
        stats.slow_closed += 1
        limit_log.note(
            30,
            "slow",
            "Closing a WebSocket with 1013: %s (stats.slow_closed=%d)",
            why,
            stats.slow_closed,
        )
        task = self.task
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()


class Watchdog:
    """Every ``SendWatch`` of one event loop, looked at every ``tick`` seconds while any."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.watches: set[SendWatch] = set()
        self.tick = 1.0
        self._timer: asyncio.TimerHandle | None = None

    def add(self, watch: SendWatch) -> None:
        self.watches.add(watch)
        if watch.timeout is not None:
            self.tick = min(self.tick, max(watch.timeout / 4, 0.01))
            if self._timer is None:
                self._timer = self.loop.call_later(self.tick, self._sweep)

    def discard(self, watch: SendWatch) -> None:
        self.watches.discard(watch)

    def _sweep(self) -> None:
        self._timer = None
        now = self.loop.time()
        for watch in list(self.watches):
            if not watch.tripped and watch.stuck(now):
                watch.trip(f"a send waited over {watch.timeout} s for the client to read")
        if any(watch.timeout is not None for watch in self.watches):
            self._timer = self.loop.call_later(self.tick, self._sweep)
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
        found = _watchdogs[loop] = Watchdog(loop)
    return found


__all__ = ["SendWatch", "Watchdog", "logger", "watchdog"]
