"""Log lines about limits, at most one per reason per interval, with the count since the last.

A flood of refusals must not become a flood of log lines (issue #13): the first event of a
reason is logged at once; later ones within ``interval`` seconds are only counted, and the
next line logged after the interval says how many there were. Pure apart from the logger
call; the clock is given.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

logger = logging.getLogger("channelworks.limits")


class AggregatedLog:
    """One line per reason per ``interval`` seconds."""

    def __init__(
        self,
        interval: float = 10.0,
        log: logging.Logger = logger,
        clock: Callable[[], float] | None = None,
    ) -> None:
        import time

        self.interval = interval
        self.log = log
        self.clock = clock or time.monotonic
        #: reason -> (when its last line was logged, events not logged since)
        self._last: dict[str, tuple[float, int]] = {}

    def note(self, level: int, reason: str, text: str, *args: object) -> bool:
        """Count one event of ``reason``; log ``text % args`` if its interval has passed.

        Returns whether a line was logged."""
        now = self.clock()
        last = self._last.get(reason)
        if last is not None and now - last[0] < self.interval:
            self._last[reason] = (last[0], last[1] + 1)
            return False
        skipped = 0 if last is None else last[1]
        self._last[reason] = (now, 0)
        if skipped:
            text += " (and %d more since the last such line)"
            args = (*args, skipped)
        self.log.log(level, text, *args)
        return True


#: the limits' log
limit_log = AggregatedLog()

__all__ = ["AggregatedLog", "limit_log", "logger"]
