"""Presence, the part every backend shares (docs/channel-layer-spec.md "Presence").

A *presence* is ``(group, key, meta)`` held by one channel: ``presence_track(group, channel,
key, meta)``. ``presence(group)`` lists them as ``{key: [meta, ...]}``, one meta per tracking
channel (a user with three tabs is one key with three metas). Every meta carries what the
layer adds to it: ``phx_ref`` (unique to this tracking; a new one on each update, as
Phoenix Presence does, with the one it replaces in ``phx_ref_prev``) and ``joined_at`` (Unix
seconds of the first ``presence_track``). The names are Phoenix's, so its JavaScript
``Presence.syncState``/``syncDiff`` apply our state and diffs unchanged.

Rules of this file:
- each process holds its own presences (``Presences.groups``) and is the only one that
  changes them; other processes hold replicas (presence_tracker.py), never the reverse;
- every change goes into a ``DiffBatch``; ``interval`` seconds after the first change of a
  window the batch is sent, one ``presence.diff`` layer message per group with changes, so a
  thousand joins in one window are one message to each member, not a thousand. Within a
  window a join and a leave of the same ``phx_ref`` cancel out;
- diffs travel through the layer's own ``group_send``; a diff may repeat a join or a leave a
  member already applied (after a partition heals): apply them by ``phx_ref``;
- a diff carries the layer's ``token`` (layers/tokens.py: an HMAC of Django's ``SECRET_KEY``,
  the same in every process of a site), and consumers act only on diffs that carry it
  (``genuine_diff``): a site that forwards client JSON into ``group_send`` must not let a
  client show its room made-up joins and leaves. The token never goes to a client;
- nothing here runs until a layer's first presence call: a project that does not use
  presence gets no task, no timer and no message from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from channelworks.exceptions import InvalidMessage, InvalidPresence
from channelworks.layers.codec import Codec
from channelworks.layers.names import require_channel_name, require_group_name
from channelworks.layers.tokens import TOKEN, carries_token, layer_token

if TYPE_CHECKING:
    from channelworks.layers.base import BaseChannelLayer
    from channelworks.layers.presence_tracker import Tracker

logger = logging.getLogger("channelworks.layers")

Meta = dict[str, Any]
#: ``{key: [meta, ...]}``: what ``presence(group)`` returns and what a diff's joins/leaves hold
PresenceState = dict[str, list[Meta]]

#: the ``type`` of the layer message that carries a group's changes to its members
DIFF_TYPE = "presence.diff"
#: seconds a window of changes lasts before it is sent as one diff per group
DEFAULT_INTERVAL = 0.05
#: seconds after which the presences of a process that went silent are gone (Phoenix's
#: down period)
DEFAULT_TIMEOUT = 30.0
#: the meta keys the layer writes; a meta given to track or update may not hold them
REF, REF_PREV, JOINED_AT = "phx_ref", "phx_ref_prev", "joined_at"
RESERVED = frozenset({REF, REF_PREV, JOINED_AT})
#: characters a key may have
MAX_KEY_LENGTH = 256
#: bytes a meta may take in msgpack
MAX_META_SIZE = 8192

_codec = Codec()


class Presence(NamedTuple):
    """One tracking: its key and its meta (which holds its ``phx_ref`` and ``joined_at``)."""

    key: str
    meta: Meta


def require_key(key: object) -> str:
    """``key`` if it is a non-empty str of at most ``MAX_KEY_LENGTH`` characters, else
    ``InvalidPresence``."""
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidPresence(
            f"A presence key must be a non-empty str of at most {MAX_KEY_LENGTH} characters "
            f"(a user id as text, say), got {key!r:.80}"
        )
    return key


def require_meta(meta: object) -> Meta:
    """A copy of ``meta`` as every process will see it (through msgpack: tuples become
    lists), or ``InvalidPresence``: it must be a dict with str keys, none of ``RESERVED``,
    of values msgpack carries, at most ``MAX_META_SIZE`` bytes."""
    if not isinstance(meta, Mapping) or not all(isinstance(name, str) for name in meta):
        raise InvalidPresence(f"A presence meta must be a dict with str keys, got {meta!r:.80}")
    taken = RESERVED.intersection(meta)
    if taken:
        raise InvalidPresence(f"A presence meta may not set {sorted(taken)}: the layer does")
    try:
        data = _codec.encode({"m": dict(meta)})
    except InvalidMessage as exc:
        raise InvalidPresence(f"A presence meta must be sendable across processes: {exc}") from exc
    if len(data) > MAX_META_SIZE:
        raise InvalidPresence(
            f"A presence meta takes {len(data)} bytes, over {MAX_META_SIZE}: keep it small "
            "(what a member list shows) and fetch the rest by key"
        )
    copy: Meta = _codec.decode(data)["m"]
    return copy


def require_timing(interval: float, timeout: float) -> None:
    """``ValueError`` unless ``0 < interval`` and ``timeout`` is at least 10 intervals."""
    if not interval > 0 or not timeout >= 10 * interval:
        raise ValueError(
            "presence_interval must be positive and presence_timeout at least ten times it, "
            f"got {interval!r} and {timeout!r}"
        )


def as_state(presences: Mapping[str, Presence]) -> PresenceState:
    """``{key: [meta, ...]}`` of ``{ref: Presence}``, metas copied (the caller may change them)."""
    state: PresenceState = {}
    found = state.get
    for key, meta in presences.values():  # the hot part of a join's presence(): no calls
        metas = found(key)
        if metas is None:
            state[key] = [meta.copy()]
        else:
            metas.append(meta.copy())
    return state


class DiffBatch:
    """Changes of one window, per group: ``{ref: Presence}`` joined and left.

    A leave of a ref joined in the same window takes the join back (members never saw it);
    a join of a ref left in the same window takes the leave back (members still have it).
    """

    def __init__(self) -> None:
        self._groups: dict[str, tuple[dict[str, Presence], dict[str, Presence]]] = {}

    def __bool__(self) -> bool:
        return bool(self._groups)

    def join(self, group: str, presence: Presence) -> None:
        joins, leaves = self._of(group)
        ref = presence.meta[REF]
        if leaves.pop(ref, None) is None:
            joins[ref] = presence
        self._drop_if_empty(group)

    def leave(self, group: str, presence: Presence) -> None:
        joins, leaves = self._of(group)
        ref = presence.meta[REF]
        if joins.pop(ref, None) is None:
            leaves[ref] = presence
        self._drop_if_empty(group)

    def take(self) -> list[dict[str, Any]]:
        """The ``presence.diff`` messages of the window (one per group), and a new window."""
        groups, self._groups = self._groups, {}
        return [
            {"type": DIFF_TYPE, "group": group, "joins": as_state(j), "leaves": as_state(lv)}
            for group, (j, lv) in groups.items()
        ]

    def _of(self, group: str) -> tuple[dict[str, Presence], dict[str, Presence]]:
        pair = self._groups.get(group)
        if pair is None:
            pair = self._groups[group] = ({}, {})
        return pair

    def _drop_if_empty(self, group: str) -> None:
        joins, leaves = self._groups[group]
        if not joins and not leaves:
            del self._groups[group]


#: a change of this process's own presences, as the tracker sends it to the others:
#: ``("j" | "l", group, ref, key, meta)``
Change = tuple[str, str, str, str, Meta]


class Presences:
    """One layer's presence: this process's own presences, the window of changes, and (for a
    layer that spans processes) the tracker that replicates them. Made at the first call."""

    def __init__(
        self, layer: BaseChannelLayer, interval: float, timeout: float, *, distributed: bool
    ) -> None:
        self.layer = layer
        self.interval = interval
        self.timeout = timeout
        #: this process in the tracker's messages and in its refs
        self.pid = secrets.token_hex(6)
        self._refs = itertools.count(1)
        #: this process's own presences: group -> ref -> Presence
        self.groups: dict[str, dict[str, Presence]] = {}
        #: channel -> group -> ref of its presence there
        self.channels: dict[str, dict[str, str]] = {}
        self.batch = DiffBatch()
        #: own changes not yet sent to the other processes (in order)
        self.changes: list[Change] = []
        #: own leaves of the last ``3 * timeout`` seconds (across processes only): sent again
        #: when a partition heals, since they may have reached nobody
        self.recent: deque[tuple[float, str, Presence]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_loop: asyncio.AbstractEventLoop | None = None
        self._flushing: asyncio.Task[None] | None = None
        self.tracker: Tracker | None = None
        if distributed:
            from channelworks.layers.presence_tracker import Tracker

            self.tracker = Tracker(self, layer, timeout)
        self.closed = False

    # -- this process's presences (no await before the bookkeeping is done) -----------------

    async def track(self, group: str, channel: str, key: object, meta: object) -> Meta:
        require_group_name(group)
        require_channel_name(channel)
        key, meta = require_key(key), require_meta(meta)
        self._require_open()
        await self._started()
        if group in self.channels.get(channel, {}):
            raise InvalidPresence(
                f"{channel!r} is already tracked in {group!r}: use presence_update to change "
                "its meta"
            )
        ref = self.new_ref()
        meta[REF], meta[JOINED_AT] = ref, time.time()
        self._join(group, channel, Presence(key, meta))
        self.layer.stats.presence_tracks += 1
        return dict(meta)

    async def update(self, group: str, channel: str, key: object, meta: object) -> Meta:
        require_group_name(group)
        require_channel_name(channel)
        key, meta = require_key(key), require_meta(meta)
        self._require_open()
        await self._started()
        old_ref = self.channels.get(channel, {}).get(group)
        if old_ref is None:
            raise InvalidPresence(f"{channel!r} is not tracked in {group!r}: track it first")
        old = self.groups[group][old_ref]
        self._leave(group, channel, old_ref)
        meta[REF], meta[REF_PREV], meta[JOINED_AT] = self.new_ref(), old_ref, old.meta[JOINED_AT]
        self._join(group, channel, Presence(key, meta))
        self.layer.stats.presence_updates += 1
        return dict(meta)

    async def untrack(self, group: str, channel: str) -> None:
        require_group_name(group)
        require_channel_name(channel)
        ref = self.channels.get(channel, {}).get(group)
        if ref is not None:
            self._leave(group, channel, ref)
            self.layer.stats.presence_untracks += 1

    async def untrack_all(self, channel: str) -> None:
        require_channel_name(channel)
        for group, ref in list(self.channels.get(channel, {}).items()):
            self._leave(group, channel, ref)
            self.layer.stats.presence_untracks += 1

    async def state(self, group: str) -> PresenceState:
        require_group_name(group)
        if self.tracker is not None and not self.closed:
            await self.tracker.synced()
            return self.tracker.state(group)
        return as_state(self.groups.get(group, {}))

    def new_ref(self) -> str:
        return f"{self.pid}.{next(self._refs)}"

    def _require_open(self) -> None:
        if self.closed:
            raise InvalidPresence("This layer's presence was closed with the layer")

    def _join(self, group: str, channel: str, presence: Presence) -> None:
        ref = presence.meta[REF]
        self.groups.setdefault(group, {})[ref] = presence
        self.channels.setdefault(channel, {})[group] = ref
        self.changes.append(("j", group, ref, presence.key, presence.meta))
        self.emit_join(group, presence)

    def _leave(self, group: str, channel: str, ref: str) -> None:
        presences = self.groups[group]
        presence = presences.pop(ref)
        if not presences:
            del self.groups[group]
        tracked = self.channels[channel]
        del tracked[group]
        if not tracked:
            del self.channels[channel]
        self.changes.append(("l", group, ref, presence.key, presence.meta))
        self.emit_leave(group, presence)
        if self.tracker is not None:
            now = time.monotonic()
            recent = self.recent
            recent.append((now, group, presence))
            while recent[0][0] < now - 3 * self.timeout:
                recent.popleft()

    def resend(self) -> None:
        """Send this process's presences again as joins, and its recent leaves again: a
        partition healed, and what it sent meanwhile may have reached nobody (its own
        members included). Members that have them already apply them without a change."""
        for group, presences in self.groups.items():
            for presence in presences.values():
                self.emit_join(group, presence)
        for _, group, presence in self.recent:
            self.emit_leave(group, presence)

    async def _started(self) -> None:
        # before the bookkeeping: nothing suspends between a check and its change
        if self.tracker is not None:
            await self.tracker.start()

    # -- the window of changes --------------------------------------------------------------

    def emit_join(self, group: str, presence: Presence) -> None:
        """Have ``group``'s members told of ``presence`` joining, with the window's diff."""
        self.batch.join(group, presence)
        self._schedule()

    def emit_leave(self, group: str, presence: Presence) -> None:
        """Have ``group``'s members told of ``presence`` leaving, with the window's diff."""
        self.batch.leave(group, presence)
        self._schedule()

    def _schedule(self) -> None:
        if not self.batch and not self.changes:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a sync caller): sent with the next change or close
            return
        if self._timer is not None:
            if self._timer_loop is loop and not loop.is_closed():
                return
            # Left on a loop that is gone (a test's, an async_to_sync call's): never fires.
            self._timer.cancel()
        self._timer_loop = loop
        self._timer = loop.call_later(self.interval, self._start_flush)

    def _start_flush(self) -> None:
        self._timer = None
        loop = asyncio.get_running_loop()
        flushing = self._flushing
        if flushing is not None and not flushing.done() and flushing.get_loop() is loop:
            flushing.add_done_callback(lambda _: self._schedule())  # one flush at a time
            return
        self._flushing = loop.create_task(self.flush(), name="presence-flush")

    async def flush(self) -> None:
        """Send the window now: own changes to the other processes first (so their replicas
        are at least as new as the diffs their members get), then one diff per group."""
        changes, self.changes = self.changes, []
        diffs = self.batch.take()
        if changes and self.tracker is not None:
            try:
                await self.tracker.publish(changes)
            except Exception as exc:  # a broker outage: the others catch up by the state
                self._failed("changes", exc)
        for diff in diffs:
            try:
                # never in the group's history: a resume replays messages, not presence
                diff[TOKEN] = layer_token(self.layer)
                await self.layer.group_send(diff["group"], diff, history=False)
                self.layer.stats.presence_diffs += 1
            except Exception as exc:
                self._failed(diff["group"], exc)

    def _failed(self, target: str, exc: Exception) -> None:
        self.layer.log_lines.event(
            logger,
            ("presence", target),
            logging.WARNING,
            "presence could not send {what} ({error}); counted in stats.lost",
            what=f"the diff of {target!r}" if target != "changes" else "its changes",
            error=exc,
        )
        self.layer.stats.lost += 1

    # -- lifecycle --------------------------------------------------------------------------

    async def close(self) -> None:
        """Leave every own presence, send the leaves and tell the other processes at once."""
        if self.closed:
            return
        self.closed = True
        for channel in list(self.channels):
            for group, ref in list(self.channels.get(channel, {}).items()):
                self._leave(group, channel, ref)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        flushing = self._flushing
        here = asyncio.get_running_loop()
        if flushing is not None and not flushing.done() and flushing.get_loop() is here:
            with contextlib.suppress(Exception):
                await flushing
        await self.flush()
        if self.tracker is not None:
            await self.tracker.stop()

    def drop(self) -> None:
        """Forget every presence without telling anyone (a layer's ``flush``)."""
        self.groups.clear()
        self.channels.clear()
        self.batch.take()
        self.changes.clear()


def genuine_diff(layer: object, message: Mapping[str, Any]) -> bool:
    """Whether ``message`` is a ``presence.diff`` a layer's presence sent (it carries the
    token), not one an application forwarded; a forged one is logged, aggregated."""
    if carries_token(layer, message):
        return True
    log_lines = getattr(layer, "log_lines", None)
    if log_lines is not None:
        log_lines.event(
            logger,
            ("presence", "forged"),
            logging.WARNING,
            "Ignored {count} presence.diff message(s) without the layer's token (forwarded "
            "by the application into group_send, or forged); the latest for group {group!r}",
            group=str(message.get("group"))[:100],
        )
    return False


class PresenceLayer:
    """The presence methods of a layer (put it before ``BaseChannelLayer`` in the bases); the
    layer calls ``setup_presence`` in its ``__init__`` and ``close_presence`` first thing in
    ``close``. ``distributed``: whether other processes share the layer (a tracker runs)."""

    presence_interval: float = DEFAULT_INTERVAL
    presence_timeout: float = DEFAULT_TIMEOUT
    presence_distributed: bool = True
    _presences: Presences | None = None

    def setup_presence(self, interval: float, timeout: float) -> None:
        require_timing(interval, timeout)
        self.presence_interval = interval
        self.presence_timeout = timeout

    @property
    def presences(self) -> Presences:
        """This layer's presence (made at the first call)."""
        presences = self._presences
        if presences is None:
            presences = self._presences = Presences(
                self,  # type: ignore[arg-type]  # mixed into a BaseChannelLayer
                self.presence_interval,
                self.presence_timeout,
                distributed=self.presence_distributed,
            )
        return presences

    async def presence_track(self, group: str, channel: str, key: str, meta: Meta) -> Meta:
        return await self.presences.track(group, channel, key, meta)

    async def presence_update(self, group: str, channel: str, key: str, meta: Meta) -> Meta:
        return await self.presences.update(group, channel, key, meta)

    async def presence_untrack(self, group: str, channel: str) -> None:
        await self.presences.untrack(group, channel)

    async def presence_untrack_all(self, channel: str) -> None:
        if self._presences is not None:
            await self._presences.untrack_all(channel)
        else:
            require_channel_name(channel)

    async def presence(self, group: str) -> PresenceState:
        return await self.presences.state(group)

    async def close_presence(self) -> None:
        """Leave this process's presences now, with their leaves sent (a layer's close). A
        layer used again afterwards (the in-memory one allows it) starts a fresh presence."""
        presences, self._presences = self._presences, None
        if presences is not None:
            await presences.close()


__all__ = [
    "DEFAULT_INTERVAL",
    "DEFAULT_TIMEOUT",
    "DIFF_TYPE",
    "DiffBatch",
    "Presence",
    "PresenceLayer",
    "PresenceState",
    "Presences",
    "require_key",
    "require_meta",
]
