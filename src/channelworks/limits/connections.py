"""Who is connected in this process: counts per process and per user, and users' buckets.

Pure bookkeeping (no I/O, no clock of its own). Rules:
- a connection holds a ``Slot`` from ``admit`` until ``Slot.release()``; release is
  idempotent, and the consumer runtime releases however the connection ends;
- a user is whatever hashable key the consumer gives (by default the authenticated user's
  primary key); ``None`` means anonymous: counted for the process only;
- a user's shared bucket is made by the first connection that needs it, with the limits it
  was admitted with, and outlives the user's connections until it has refilled: closing and
  reopening a connection does not give a flooding user a fresh burst. Buckets of users with
  no connection left are forgotten once full again, looked at as new buckets are asked for;
- the same holds per client address for a connection that met its inbound limits: it leaves
  its spent buckets to its address (``remember_flood``), and the next connections from that
  address start from them (``flood_left``) until they have refilled, so an anonymous flooder
  that reconnects gets no fresh burst either; a client that never met them leaves nothing.
  At most ``_MAX_FLOODS`` addresses are kept (refilled ones go first).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

from channelworks.limits.bucket import TokenBucket


@dataclass
class _User:
    connections: int = 0
    bucket: TokenBucket | None = None


@dataclass
class Connections:
    """The open connections of one process (one instance: ``connections``)."""

    total: int = 0
    users: dict[Hashable, _User] = field(default_factory=dict)
    #: the buckets of users with no connection left, kept until they have refilled
    idle: dict[Hashable, TokenBucket] = field(default_factory=dict)
    #: spent buckets (message and byte tat) of connections that met their inbound limits, by
    #: client address, kept until they have refilled
    floods: dict[str, tuple[float, float]] = field(default_factory=dict)
    _asked: int = 0

    def admit(
        self,
        user: Hashable | None,
        max_total: int | None,
        max_per_user: int | None,
    ) -> Slot | str:
        """A slot for a new connection, or why there is none (``"process"`` or ``"user"``)."""
        if max_total is not None and self.total >= max_total:
            return "process"
        if user is not None:
            entry = self.users.get(user) or _User()
            if max_per_user is not None and entry.connections >= max_per_user:
                return "user"
            self.users[user] = entry
            entry.connections += 1
        self.total += 1
        return Slot(self, user)

    def user_bucket(self, user: Hashable, rate: float, burst: float, now: float) -> TokenBucket:
        """The bucket shared by ``user``'s connections (the user must hold a slot)."""
        entry = self.users[user]
        if entry.bucket is None:
            idle = self.idle.pop(user, None)
            entry.bucket = idle if idle is not None else TokenBucket(rate, burst, now)
        self._asked += 1
        if self._asked >= _PRUNE_EVERY or len(self.idle) > _MAX_IDLE:
            self.prune(now)
        return entry.bucket

    def prune(self, now: float) -> None:
        """Forget the buckets of users with no connection that have refilled by ``now``."""
        self._asked = 0
        for user, bucket in list(self.idle.items()):
            if bucket.level(now) >= bucket.burst:
                del self.idle[user]

    def remember_flood(self, address: str, tats: tuple[float, float], now: float) -> None:
        """A connection from ``address`` that met its limits ended at ``now`` with ``tats``."""
        floods = self.floods
        if len(floods) >= _MAX_FLOODS and address not in floods:
            for key in [key for key, old in floods.items() if max(old) <= now]:
                del floods[key]
            while len(floods) >= _MAX_FLOODS:  # all still spent: the oldest entry goes
                del floods[next(iter(floods))]
        previous = floods.get(address)
        if previous is not None:
            tats = (max(tats[0], previous[0]), max(tats[1], previous[1]))
        floods[address] = tats

    def flood_left(self, address: str, now: float) -> tuple[float, float] | None:
        """The spent buckets a new connection from ``address`` starts from, if any are left."""
        tats = self.floods.get(address)
        if tats is None:
            return None
        if max(tats) <= now:  # refilled
            del self.floods[address]
            return None
        return tats

    def count(self, user: Hashable) -> int:
        """How many connections ``user`` has open here."""
        entry = self.users.get(user)
        return 0 if entry is None else entry.connections

    def _release(self, user: Hashable | None) -> None:
        self.total -= 1
        if user is None:
            return
        entry = self.users[user]
        entry.connections -= 1
        if entry.connections == 0:
            del self.users[user]
            if entry.bucket is not None:
                self.idle[user] = entry.bucket


#: prune the idle buckets every this many bucket requests, or when there are more than
_PRUNE_EVERY = 1000
_MAX_IDLE = 10_000
#: client addresses whose spent buckets are remembered at most
_MAX_FLOODS = 10_000


class Slot:
    """One admitted connection; ``release()`` when it ends."""

    __slots__ = ("_owner", "user")

    def __init__(self, owner: Connections, user: Hashable | None) -> None:
        self._owner: Connections | None = owner
        self.user = user

    def release(self) -> None:
        owner, self._owner = self._owner, None
        if owner is not None:
            owner._release(self.user)


#: this process's connections (of consumers with limits)
connections = Connections()

__all__ = ["Connections", "Slot", "connections"]
