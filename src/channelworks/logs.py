"""Log lines about repeated events, aggregated: one line per key per interval, with counts.

A room with one flooded member makes every ``group_send`` skip it; an outage makes every
send fail. The counters (``layer.stats``) stay exact per event, but the log gets at most one
line per key (a group and a reason, say) per ``interval`` seconds:

- the first event of a key is logged at once, as it is;
- events of that key in the next ``interval`` are only added up; when the interval ends
  (a timer on the running event loop, or the next event after it if there is no loop) one
  line reports them: the sum of their counts, the number of events, the seconds they span,
  and the fields of the latest one;
- after an interval without events a key starts afresh (its next event is logged at once).

Keys are bounded (``MAX_KEYS``): past it, keys with nothing pending are forgotten first.
The clock is injected so the rules are tested with plain numbers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

#: seconds between two lines of one key, by default
INTERVAL = 10.0
#: keys remembered at most (each is a few hundred bytes)
MAX_KEYS = 10_000


@dataclass
class _Pending:
    last_line: float  # when this key's last line was written
    logger: logging.Logger | None = None
    level: int = logging.WARNING
    template: str = ""
    fields: dict[str, Any] = field(default_factory=dict)
    count: int = 0  # summed counts of the events not yet reported
    events: int = 0  # how many events that is
    first: float = 0.0  # when the first of them happened
    timer: asyncio.TimerHandle | None = None


class AggregatedLog:
    """Writes ``template.format(count=..., **fields)`` lines, aggregated per key.

    Call ``event(logger, key, level, template, count, **fields)`` once per event; ``count``
    is what the event adds to the line's ``{count}`` (messages skipped, say). One instance per
    owner (a layer), so that one owner's lines never hold back another's.
    """

    def __init__(self, interval: float = INTERVAL, clock: Callable[[], float] = time.monotonic):
        self.interval = interval
        self._clock = clock
        self._keys: dict[Hashable, _Pending] = {}

    def event(
        self,
        logger: logging.Logger,
        key: Hashable,
        level: int,
        template: str,
        count: int = 1,
        **fields: Any,
    ) -> None:
        now = self._clock()
        entry = self._keys.get(key)
        if entry is None or (not entry.events and now - entry.last_line >= self.interval):
            if entry is None and len(self._keys) >= MAX_KEYS:
                self._forget_idle(now)
            self._keys[key] = _Pending(last_line=now)
            if logger.isEnabledFor(level):
                logger.log(level, template.format(count=count, **fields))
            return
        if not entry.events:
            entry.first = now
        entry.events += 1
        entry.count += count
        entry.logger, entry.level, entry.template, entry.fields = logger, level, template, fields
        if now - entry.last_line >= self.interval:
            self._report(key, entry, now)
        elif entry.timer is None:
            self._arm(key, entry)

    def flush(self) -> None:
        """Write every pending line now (a layer that closes calls it)."""
        now = self._clock()
        for key, entry in list(self._keys.items()):
            if entry.events:
                self._report(key, entry, now)

    def _arm(self, key: Hashable, entry: _Pending) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop: the next event after the interval reports
            return
        delay = max(0.0, entry.last_line + self.interval - self._clock())
        entry.timer = loop.call_later(delay, self._on_timer, key, entry)

    def _on_timer(self, key: Hashable, entry: _Pending) -> None:
        entry.timer = None
        if self._keys.get(key) is entry and entry.events:
            self._report(key, entry, self._clock())

    def _report(self, key: Hashable, entry: _Pending, now: float) -> None:
        if entry.timer is not None:
            entry.timer.cancel()
            entry.timer = None
        logger = entry.logger
        if logger is not None and logger.isEnabledFor(entry.level):
            line = entry.template.format(count=entry.count, **entry.fields)
            span = max(now, entry.first) - entry.first
            logger.log(
                entry.level,
                f"{line} [{entry.events} times in {span:.0f} s, aggregated: "
                f"at most one line per {self.interval:g} s]",
            )
        entry.last_line = now
        entry.events = entry.count = 0

    def _forget_idle(self, now: float) -> None:
        idle = [k for k, e in self._keys.items() if not e.events]
        for key in idle[: max(1, len(idle) // 2)]:
            del self._keys[key]
        if len(self._keys) >= MAX_KEYS:  # all pending: report and forget the oldest half
            for key in list(self._keys)[: MAX_KEYS // 2]:
                self._report(key, self._keys.pop(key), now)


__all__ = ["INTERVAL", "MAX_KEYS", "AggregatedLog"]
