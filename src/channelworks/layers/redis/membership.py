"""Which group memberships of its own channels a process keeps alive, and when.

The rule (docs/redis.md, "Memberships and dead processes"): a membership of a process-local
channel added by the process that owns the channel gets the score ``now + hold`` (``hold`` is
``min(group_expiry, process_timeout)``), and every ``refresh_interval`` the process renews it
to ``min(now + hold, last read + group_expiry)``, where a channel that a receiver is waiting on
counts as read now, and joining a group counts as a read. So:

- a live consumer keeps its memberships, also while it is busy in a handler for less than
  ``group_expiry``;
- a channel nobody reads any more loses them ``group_expiry`` after its last read;
- a process that dies stops renewing, and its memberships lapse ``hold`` after its last
  renewal: ``process_timeout`` at most.

This class is plain bookkeeping (no I/O, injected clock); the keeper turns ``due()`` into
``ZADD XX GT`` commands.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Memberships:
    """The groups each of this process's channels joined, and when each channel was read."""

    def __init__(
        self, group_expiry: float, hold: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.group_expiry = group_expiry
        self.hold = hold
        self._clock = clock
        self.groups_of: dict[str, set[str]] = {}
        self._last_read: dict[str, float] = {}
        self._waiting: dict[str, int] = {}

    def add(self, channel: str, group: str) -> None:
        self.groups_of.setdefault(channel, set()).add(group)
        self._last_read[channel] = self._clock()  # joining a group counts as being alive

    def discard(self, channel: str, group: str) -> None:
        groups = self.groups_of.get(channel)
        if groups is not None:
            groups.discard(group)
            if not groups:
                self._forget(channel)

    def clear(self) -> None:
        self.groups_of.clear()
        self._last_read.clear()
        self._waiting.clear()

    # The three calls below run on every receive: keep them to a dict lookup when the channel
    # is in no group.

    def read(self, channel: str) -> None:
        """``channel`` was just read from."""
        if channel in self.groups_of:
            self._last_read[channel] = self._clock()

    def wait_started(self, channel: str) -> None:
        if channel in self.groups_of:
            self._waiting[channel] = self._waiting.get(channel, 0) + 1

    def wait_ended(self, channel: str) -> None:
        count = self._waiting.get(channel)
        if count is not None:
            if count <= 1:
                del self._waiting[channel]
            else:
                self._waiting[channel] = count - 1
            self._last_read[channel] = self._clock()

    def due(self) -> dict[str, list[tuple[str, float]]]:
        """``{group: [(channel, seconds it may live from now), ...]}`` to renew now.

        Channels unread for ``group_expiry`` are forgotten: their memberships lapse in Redis
        on their own.
        """
        now = self._clock()
        renew: dict[str, list[tuple[str, float]]] = {}
        for channel, groups in list(self.groups_of.items()):
            if channel in self._waiting:
                left = self.hold
            else:
                left = min(self.hold, self._last_read.get(channel, now) + self.group_expiry - now)
                if left <= 0:
                    self._forget(channel)
                    continue
            for group in groups:
                renew.setdefault(group, []).append((channel, left))
        return renew

    def _forget(self, channel: str) -> None:
        self.groups_of.pop(channel, None)
        self._last_read.pop(channel, None)
        self._waiting.pop(channel, None)


__all__ = ["Memberships"]
