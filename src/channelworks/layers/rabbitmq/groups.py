"""Group memberships of this process's channels, and the bindings they need: no I/O.

The rules:
- the process queue is bound to the groups exchange under a group's name while at least one
  of this process's channels is a member; ``group_send`` then costs one publish, RabbitMQ
  copies it to each bound process queue, and each process fans it out to its own members;
- a membership lapses once its channel has gone unread for ``group_expiry`` seconds, judged at
  the time the group message was *sent* (its header carries the sender's clock): a member is
  alive at time ``S`` if a receiver was waiting on it since before ``S``, or if it joined or
  was last read less than ``group_expiry`` before ``S``. Lapsed members are dropped when a
  group message finds them, so a consumer busy in a handler (for less than ``group_expiry``)
  keeps its groups and only channels nobody reads lose theirs; a timer (the layer's
  ``_sweep``) finds them too when no group message comes, so that their binding goes;
- ``lapsed`` is O(1) until a member could have lapsed: each scan notes, per group, the
  earliest time one of the members it kept can lapse (joins and reads only push that later);
- a process that dies stops consuming its queue; RabbitMQ deletes the queue
  ``process_timeout`` later (``x-expires``), and its bindings with it: no zombie memberships.

Times are wall-clock seconds (``time.time``) because they are compared with other processes'.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Memberships:
    """``members``: group -> {own channel: joined at}; ``bound``: groups bound now."""

    def __init__(self, group_expiry: float, clock: Callable[[], float] = time.time) -> None:
        self.group_expiry = group_expiry
        self.clock = clock
        self.members: dict[str, dict[str, float]] = {}
        self.bound: set[str] = set()
        self._read: dict[str, float] = {}
        self._waiting: dict[str, tuple[int, float]] = {}  # channel -> (receivers, since)
        self._next: dict[str, float] = {}  # group -> no member lapses before this time

    def add(self, group: str, channel: str) -> None:
        """Record (or refresh) a member (the layer binds the queue under its lock)."""
        self.members.setdefault(group, {})[channel] = self.clock()

    def discard(self, group: str, channel: str) -> None:
        """Forget a member (the layer unbinds the queue under its lock once none is left)."""
        channels = self.members.get(group)
        if channels is None:
            return
        channels.pop(channel, None)
        if not channels:
            del self.members[group]
            self._next.pop(group, None)

    def wanted(self, group: str) -> bool:
        """Whether one of this process's channels is a member of ``group``."""
        return group in self.members

    def is_member(self, group: str, channel: str) -> bool:
        return channel in self.members.get(group, ())

    def clear(self) -> list[str]:
        """Forget every member; -> the groups that were bound."""
        self.members.clear()
        self._next.clear()
        self._read.clear()
        self._waiting.clear()
        return sorted(self.bound)

    # Called on every receive of an own channel: a dict lookup when it is in no group.

    def read(self, channel: str) -> None:
        if self.members:
            self._read[channel] = self.clock()

    def wait_started(self, channel: str) -> None:
        if not self.members:
            return
        count, since = self._waiting.get(channel, (0, self.clock()))
        self._waiting[channel] = (count + 1, since)

    def wait_ended(self, channel: str) -> None:
        entry = self._waiting.pop(channel, None)
        if entry is None:
            return
        if entry[0] > 1:
            self._waiting[channel] = (entry[0] - 1, entry[1])
        self._read[channel] = self.clock()

    def lapsed(self, group: str, sent: float) -> list[str]:
        """Members of ``group`` that were no longer alive at time ``sent``; they are removed."""
        channels = self.members.get(group)
        if not channels:
            return []
        if sent < self._next.get(group, 0.0):
            return []
        gone = []
        horizon = sent - self.group_expiry
        earliest = float("inf")
        for channel, joined in channels.items():
            waiting = self._waiting.get(channel)
            if waiting is not None and waiting[1] <= sent:
                # alive while it waits; once it stops, its read time is later than now
                earliest = min(earliest, min(sent, self.clock()))
                continue
            seen = max(joined, self._read.get(channel, 0.0))
            if seen > horizon:
                earliest = min(earliest, seen)
                continue
            gone.append(channel)
        for channel in gone:
            del channels[channel]
            if not any(channel in members for members in self.members.values()):
                self._read.pop(channel, None)
        if channels:
            self._next[group] = earliest + self.group_expiry
        else:
            del self.members[group]
            self._next.pop(group, None)
        return gone

    def due(self, now: float) -> list[str]:
        """Groups one of whose members may have lapsed by ``now`` (for the sweep)."""
        return [group for group in self.members if self._next.get(group, 0.0) <= now]

    def next_due(self) -> float | None:
        """When the next member may lapse (``None``: no members)."""
        if not self.members:
            return None
        return min(self._next.get(group, 0.0) for group in self.members)


__all__ = ["Memberships"]
