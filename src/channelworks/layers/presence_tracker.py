"""Presence across processes: every process's presences replicated in every other, over the
layer's own groups (the model of Phoenix.Tracker; docs/presence.md "How it works").

Each process's tracker reads a channel of its own that is a member of ``TRACKER_GROUP`` and
sends ``presence.tracker`` messages to that group (so it runs on any layer with groups, and
a broker restart is survived as memberships are: the Redis layer's keeper re-adds them).
The ``op`` of a message says what it is:

- ``hello``: a tracker started; every other answers with its ``state``;
- ``delta`` (``base``, ``seq``, ``changes``): the sender's own changes, numbered; a replica
  applies it only if ``base`` is the number it holds, else it asks for the ``state``;
- ``beat`` (``seq``) every ``beat_every`` seconds: a replica that holds another number asks;
- ``request`` (``of``): asks tracker ``of`` for its ``state``;
- ``state`` (``seq``, ``part``, ``last``, ``entries``): the sender's whole own state, in parts;
- ``down``: a clean stop (the sender sent its own leaves first).

Rules of this file:
- a tracker changes only its replicas of others; the sender's state always wins;
- messages from one sender arrive in order (one group, one path); numbering catches a lost
  one, and the beat catches a lost last one;
- a process not heard from for ``timeout`` seconds is *reaped*: its presences are dropped and
  the *leader* (the tracker with the smallest id among those heard from in the last three
  beats, the reaped one aside) sends their leaves to the groups. When a state replaces a
  replica that was known (after lost messages, or a reaped process that comes back from a
  partition) the leader sends the difference as joins and leaves. When a reaped process is
  heard again, each tracker also sends its own presences (and its recent leaves) again:
  those it sent during the partition may have reached nobody. Two trackers may both think
  they lead for a moment: a diff may repeat a change, never lose one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from channelworks.layers.presence import Change, Presence, PresenceState, as_state

if TYPE_CHECKING:
    from channelworks.layers.base import BaseChannelLayer
    from channelworks.layers.presence import Presences

logger = logging.getLogger("channelworks.layers")

#: the group every tracker's channel is a member of
TRACKER_GROUP = "channelworks.presence"
#: the ``type`` of the trackers' messages
TRACKER_TYPE = "presence.tracker"
#: changes (or presences) per message
PART = 200
#: seconds a new tracker gives the others to answer its hello before ``presence()`` answers
SYNC_WAIT = 0.25
#: beats a tracker may miss and still count as live for the leader's choice
LIVE_BEATS = 3

Groups = dict[str, dict[str, Presence]]


class Peer:
    """This process's replica of another process's presences."""

    __slots__ = ("asked", "groups", "heard", "incoming", "incoming_seq", "known", "seq")

    def __init__(self, heard: float, *, known: bool) -> None:
        self.seq = 0  # the number of the last delta applied (or of the state taken)
        self.heard = heard
        self.groups: Groups = {}
        self.incoming: Groups | None = None  # a state arriving in parts
        self.incoming_seq = -1
        self.asked = -math.inf  # when its state was last asked for
        #: whether members may have seen its presences (its diff reached them or a leader's
        #: did): then a state that replaces this replica is sent on as a diff by the leader
        self.known = known


class Tracker:
    """One process's tracker; see the module docstring. Made by ``Presences``."""

    def __init__(
        self,
        presences: Presences,
        layer: BaseChannelLayer,
        timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.presences = presences
        self.layer = layer
        self.timeout = timeout
        self.pid = presences.pid
        self.beat_every = max(0.05, min(timeout / 6, 5.0))
        self.clock = clock
        self.peers: dict[str, Peer] = {}
        #: reaped processes, when (a message from one is a process back from a partition)
        self.gone: dict[str, float] = {}
        self.seq = 0
        self.channel: str | None = None
        self._starting: asyncio.Future[None] | None = None
        self._ready_at = 0.0
        self._tasks: list[asyncio.Task[None]] = []
        self._lock: asyncio.Lock | None = None

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Join the trackers' group and start reading and beating (once; a failed start is
        tried again by the next call)."""
        starting = self._starting
        if starting is not None and starting.get_loop().is_closed():
            # Its loop ended (a test's, a thread's), and the reader and beat with it: start
            # again here (the others answer the hello with their state again).
            starting, self._tasks = None, []
        if starting is None or (starting.done() and starting.exception() is not None):
            starting = self._starting = asyncio.ensure_future(self._begin())
        await asyncio.shield(starting)

    async def _begin(self) -> None:
        self._lock = asyncio.Lock()
        channel = await self.layer.new_channel("presence")
        await self.layer.group_add(TRACKER_GROUP, channel)
        self.channel = channel
        loop = asyncio.get_running_loop()
        self._ready_at = loop.time() + SYNC_WAIT
        self._tasks = [
            loop.create_task(self._read(channel), name=f"presence-reader-{self.pid}"),
            loop.create_task(self._beat(), name=f"presence-beat-{self.pid}"),
        ]
        await self._broadcast({"op": "hello"})

    async def synced(self) -> None:
        """Once started and the others had time to answer the hello."""
        await self.start()
        delay = self._ready_at - asyncio.get_running_loop().time()
        if delay > 0:
            await asyncio.sleep(delay)

    async def stop(self) -> None:
        """Tell the others this process is gone (its leaves were sent), stop reading."""
        if self._starting is None or not self._starting.done() or self._starting.exception():
            return
        with contextlib.suppress(Exception):
            await self._broadcast({"op": "down"})
        tasks, self._tasks = self._tasks, []
        tasks = [task for task in tasks if not task.get_loop().is_closed()]  # gone with it
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- what this process sends ------------------------------------------------------------

    async def publish(self, changes: list[Change]) -> None:
        """Send this process's ``changes`` to the others, numbered, in parts."""
        assert self._lock is not None  # changes exist only after start()
        async with self._lock:
            for start in range(0, len(changes), PART):
                base = self.seq
                self.seq += 1
                await self._broadcast(
                    {
                        "op": "delta",
                        "base": base,
                        "seq": self.seq,
                        "changes": [list(c) for c in changes[start : start + PART]],
                    }
                )

    async def send_state(self) -> None:
        """Send this process's whole state (what it holds now, numbered as the last delta:
        changes not yet published are in it, and applying them again changes nothing)."""
        assert self._lock is not None
        async with self._lock:
            entries = [
                [group, ref, presence.key, presence.meta]
                for group, presences in self.presences.groups.items()
                for ref, presence in presences.items()
            ]
            parts = max(1, math.ceil(len(entries) / PART))
            for part in range(parts):
                await self._broadcast(
                    {
                        "op": "state",
                        "seq": self.seq,
                        "part": part,
                        "last": part == parts - 1,
                        "entries": entries[part * PART : (part + 1) * PART],
                    }
                )

    async def _broadcast(self, message: dict[str, Any]) -> None:
        message["type"] = TRACKER_TYPE
        message["pid"] = self.pid
        await self.layer.group_send(TRACKER_GROUP, message, history=False)

    async def _beat(self) -> None:
        assert self._lock is not None
        while True:
            await asyncio.sleep(self.beat_every)
            try:
                async with self._lock:  # not between a delta's number and its sending
                    await self._broadcast({"op": "beat", "seq": self.seq})
            except Exception as exc:
                self._trouble("beat", exc)
            self.reap()

    # -- what this process reads ------------------------------------------------------------

    async def _read(self, channel: str) -> None:
        while True:
            try:
                message = await self.layer.receive(channel)
                await self.handle(message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # an outage, or a message that is not ours
                self._trouble("read", exc)
                await asyncio.sleep(self.beat_every)

    async def handle(self, message: dict[str, Any]) -> None:
        """Apply one tracker message from another process."""
        pid, op = message.get("pid"), message.get("op")
        if pid == self.pid or not isinstance(pid, str):
            return
        if op == "down":
            self.peers.pop(pid, None)
            self.gone.pop(pid, None)
            return
        now = self.clock()
        peer = self.peers.get(pid)
        if peer is None:
            back = self.gone.pop(pid, None) is not None
            peer = self.peers[pid] = Peer(now, known=back)
            if back:  # a partition healed (on one side or the other): say ours again
                self.presences.resend()
        peer.heard = now
        if op == "hello":
            await self.send_state()
        elif op == "beat":
            if message["seq"] != peer.seq:
                await self._ask(pid, peer, now)
        elif op == "delta":
            peer.incoming = None  # a state cut short by an outage is abandoned
            if message["base"] == peer.seq:
                _apply(peer.groups, message["changes"])
                peer.seq = message["seq"]
                peer.known = True
            elif message["seq"] > peer.seq:
                await self._ask(pid, peer, now)
        elif op == "request":
            if message.get("of") == self.pid:
                await self.send_state()
        elif op == "state":
            self._take_state(pid, peer, message)

    async def _ask(self, pid: str, peer: Peer, now: float) -> None:
        if now - peer.asked < self.beat_every:
            return
        peer.asked = now
        await self._broadcast({"op": "request", "of": pid})

    def _take_state(self, pid: str, peer: Peer, message: dict[str, Any]) -> None:
        seq = message["seq"]
        if message["part"] == 0:
            peer.incoming, peer.incoming_seq = {}, seq
        elif peer.incoming is None or seq != peer.incoming_seq:
            return  # the start of this state was lost: a beat asks again
        incoming = peer.incoming
        assert incoming is not None
        for group, ref, key, meta in message["entries"]:
            incoming.setdefault(group, {})[ref] = Presence(key, meta)
        if not message["last"]:
            return
        peer.incoming = None
        if seq < peer.seq:
            return  # older than what the deltas gave
        old, peer.groups, peer.seq = peer.groups, incoming, seq
        if peer.known and self.leads(pid):
            self._send_difference(old, incoming)
        peer.known = True

    def _send_difference(self, old: Groups, new: Groups) -> None:
        emit_join, emit_leave = self.presences.emit_join, self.presences.emit_leave
        for group in old.keys() | new.keys():
            before, after = old.get(group, {}), new.get(group, {})
            for ref in before.keys() - after.keys():
                emit_leave(group, before[ref])
            for ref in after.keys() - before.keys():
                emit_join(group, after[ref])

    # -- liveness ---------------------------------------------------------------------------

    def reap(self) -> None:
        """Drop the processes not heard from for ``timeout``; the leader sends their leaves."""
        now = self.clock()
        for pid, peer in list(self.peers.items()):
            if now - peer.heard <= self.timeout:
                continue
            del self.peers[pid]
            self.gone[pid] = now
            logger.info("presence: process %s went silent, its presences are gone", pid)
            if self.leads(pid):
                self._send_difference(peer.groups, {})
        forget = now - 10 * self.timeout
        for pid in [p for p, when in self.gone.items() if when < forget]:
            del self.gone[pid]

    def leads(self, about: str) -> bool:
        """Whether this tracker speaks for the others about process ``about``."""
        now, live = self.clock(), LIVE_BEATS * self.beat_every
        return all(
            self.pid < pid
            for pid, peer in self.peers.items()
            if pid != about and now - peer.heard <= live
        )

    # -- reading the state ------------------------------------------------------------------

    def state(self, group: str) -> PresenceState:
        """``{key: [meta, ...]}`` of ``group``: this process's presences and its replicas'."""
        state = as_state(self.presences.groups.get(group, {}))
        found = state.get
        for peer in self.peers.values():
            presences = peer.groups.get(group)
            if presences is None:
                continue
            for key, meta in presences.values():
                metas = found(key)
                if metas is None:
                    state[key] = [meta.copy()]
                else:
                    metas.append(meta.copy())
        return state

    def _trouble(self, what: str, exc: Exception) -> None:
        self.layer.log_lines.event(
            logger,
            ("presence-tracker", what),
            logging.WARNING,
            "presence tracker could not {what}: {error} (retrying)",
            what="send its heartbeat" if what == "beat" else "read",
            error=exc,
        )


def _apply(groups: Groups, changes: list[list[Any]]) -> None:
    for op, group, ref, key, meta in changes:
        if op == "j":
            groups.setdefault(group, {})[ref] = Presence(key, meta)
        else:
            presences = groups.get(group)
            if presences is not None:
                presences.pop(ref, None)
                if not presences:
                    del groups[group]


__all__ = ["TRACKER_GROUP", "TRACKER_TYPE", "Tracker"]
