"""The channel layer contract as a base class: configuration, capacity rules, name checks.

A backend subclasses ``BaseChannelLayer`` and implements the contract's coroutines (here they
raise ``NotImplementedError``: the class is concrete, as Channels' is, so third-party layers
written against Channels subclass it and call its name checks). Everything
that is the same for every backend (what a valid name is, which capacity a channel gets, how a
skipped group member is reported) lives here so that backends cannot drift apart.
"""

from __future__ import annotations

import asyncio
import bisect
import fnmatch
import logging
import re
import warnings
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import CodeType
from typing import Any, ClassVar, TypeVar

from channelworks.exceptions import InvalidChannelName, MessageTooLarge
from channelworks.layers import names
from channelworks.layers.history import DEFAULT_LIMIT, HistoryResult, StreamPosition
from channelworks.logs import AggregatedLog

logger = logging.getLogger("channelworks.layers")

CapacityPatterns = Mapping[str | re.Pattern[str], int]

#: bytes a message may take encoded (msgpack, encrypted where the layer encrypts), on every
#: layer unless ``max_message_size`` says otherwise
DEFAULT_MAX_MESSAGE_SIZE = 1024 * 1024

#: the code of layers' own background tasks (``background_task``)
BACKGROUND_TASK_CODES: set[CodeType] = set()

_Function = TypeVar("_Function", bound=Callable[..., Any])


def background_task(function: _Function) -> _Function:
    """Mark an ``async def`` whose tasks are a layer's own background work (a flusher of
    queued sends). Consumers give the loop a turn before their next message when a task
    was created since their last one, so that a task their handler started runs first
    (consumers/turns.py); nobody waits for these, and counting them would cost that turn
    for nothing, or keep a sync consumer's frame from taking a layer message along."""
    BACKGROUND_TASK_CODES.add(function.__code__)
    return function


@dataclass
class LayerStats:
    """Counters of what a layer could not deliver, and of its presence and history work.
    Read them; never reset in place (``channelworks_layer_events_total``, docs/operations.md)."""

    #: members skipped by ``group_send`` because their channel was full
    group_full: int = 0
    #: messages that expired in a channel before anyone received them
    expired: int = 0
    #: messages from a broker that could not be decrypted or decoded (logged at ERROR);
    #: always 0 in the in-memory layer
    undecodable: int = 0
    #: times a broker connection that readers depend on was lost and regained
    reconnects: int = 0
    #: messages a layer may have lost (each logged at ERROR with the reason)
    lost: int = 0
    #: ``presence_track`` calls that tracked a channel (presence.py, every backend)
    presence_tracks: int = 0
    #: ``presence_update`` calls that replaced a meta
    presence_updates: int = 0
    #: presences ended by ``presence_untrack``/``presence_untrack_all`` (one per group left)
    presence_untracks: int = 0
    #: ``presence.diff`` messages sent to groups (one per group per window with changes)
    presence_diffs: int = 0
    #: messages appended to a group's history log (``group_send`` with history)
    history_appends: int = 0
    #: ``history()`` calls answered (a resume, or the last messages)
    history_reads: int = 0
    #: ``history()`` calls that raised ``Unrecoverable`` (a client's position was too old)
    history_unrecoverable: int = 0


#: upper bounds of the fan-out histogram's buckets (``FanOut``)
FANOUT_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
#: fan-outs up to this are counted one by one (``FanOut.small``), bucketed when read
SMALL_FANOUT = 100


class FanOut:
    """A histogram of how many channels one group message was delivered to in this process
    (``channelworks_group_fanout``): observed where a process puts a group message into its
    members' channels (``InMemoryChannelLayer.group_send``, which the Redis and RabbitMQ
    layers' readers call too), so a message whose members live in three processes is three
    observations, and the sum over processes counts every delivery.

    Observing is one list increment: ``small[n]`` counts the messages that reached ``n``
    channels (``n <= SMALL_FANOUT``); larger ones go to ``large``, by bucket. ``counts``
    and ``sum`` put them into ``FANOUT_BUCKETS`` when read (a scrape).
    """

    __slots__ = ("large", "large_sum", "small")

    def __init__(self) -> None:
        self.small = [0] * (SMALL_FANOUT + 1)
        self.large = [0] * (len(FANOUT_BUCKETS) + 1)  # the last one: over every bound
        self.large_sum = 0

    def observe(self, delivered: int) -> None:
        try:
            self.small[delivered] += 1
        except IndexError:
            self.observe_large(delivered)

    def observe_large(self, delivered: int) -> None:
        self.large[bisect.bisect_left(FANOUT_BUCKETS, delivered)] += 1
        self.large_sum += delivered

    @property
    def counts(self) -> list[int]:
        """Messages per bucket of ``FANOUT_BUCKETS`` (not cumulative; the last one is over
        every bound)."""
        counts = list(self.large)
        for delivered, count in enumerate(list(self.small)):
            if count:
                counts[bisect.bisect_left(FANOUT_BUCKETS, delivered)] += count
        return counts

    @property
    def sum(self) -> int:
        """Channels reached, over every message observed."""
        return self.large_sum + sum(n * count for n, count in enumerate(list(self.small)))


class BaseChannelLayer:
    """What every channel layer does; see docs/channel-layer-spec.md.

    Options (all backends): ``expiry`` seconds an undelivered message lives (default 60),
    ``group_expiry`` seconds a membership lives unless refreshed (default 86400), ``capacity``
    messages a channel holds (default 100), ``channel_capacity`` a mapping of glob pattern (or
    compiled regex) to capacity for matching channels; the first match wins.
    ``max_message_size`` bytes a message may take encoded (default 1 MiB, ``None`` for no
    limit): over it ``send`` and ``group_send`` raise ``MessageTooLarge``.
    """

    extensions: ClassVar[list[str]] = ["groups", "flush"]

    def __init__(
        self,
        expiry: float = 60,
        group_expiry: float = 86400,
        capacity: int = 100,
        channel_capacity: CapacityPatterns | None = None,
        *,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
    ) -> None:
        if expiry <= 0 or group_expiry <= 0:
            raise ValueError("expiry and group_expiry must be positive")
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity!r}")
        self.expiry = expiry
        self.group_expiry = group_expiry
        self.capacity = capacity
        self.channel_capacity = self.compile_capacities(channel_capacity or {})
        if max_message_size is not None and (
            type(max_message_size) is not int or max_message_size < 1
        ):
            raise ValueError(
                f"max_message_size must be a positive int or None, got {max_message_size!r}"
            )
        self.max_message_size = max_message_size
        self.stats = LayerStats()
        #: channels each group message reached in this process (``FanOut``)
        self.fanout = FanOut()
        #: repeated warnings of this layer, one line per key and interval (channelworks.logs)
        self.log_lines = AggregatedLog()

    # -- the contract -------------------------------------------------------------------------

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        """Send ``message`` to ``channel``; raise ``ChannelFull`` if it is at capacity."""
        raise NotImplementedError(f"{type(self).__name__} does not implement send()")

    async def receive(self, channel: str) -> dict[str, Any]:
        """Wait for and return the next message on ``channel``.

        Cancelling the call never loses a message: one that was already handed over is kept
        for the next ``receive``.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement receive()")

    def receive_nowait(self, channel: str) -> dict[str, Any] | None:
        """The next message already waiting on ``channel``, or ``None``; never waits.

        A fast path for readers that drain a channel (consumers use it before ``receive``).
        The default knows of no waiting message; backends that hold messages in this process
        override it.
        """
        return None

    def reader_calls(
        self, channel: str, loop: asyncio.AbstractEventLoop
    ) -> tuple[Callable[[str], dict[str, Any] | None], Callable[[str], Awaitable[dict[str, Any]]]]:
        """How a consumer's reader of ``channel`` (on ``loop``) polls and waits: it polls
        until the poll finds nothing, then waits at once, without letting the loop run in
        between. ``receive_nowait`` and ``receive`` here; a backend may give shorter ways to
        the same messages (the in-memory layer's ``receive_next``).
        """
        return self.receive_nowait, self.receive

    async def new_channel(self, prefix: str = "specific") -> str:
        """Return a new, unique process-local channel name to ``receive`` from."""
        raise NotImplementedError(f"{type(self).__name__} does not implement new_channel()")

    async def group_add(self, group: str, channel: str) -> None:
        """Add ``channel`` to ``group`` (or refresh its membership)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement group_add()")

    async def group_discard(self, group: str, channel: str) -> None:
        """Remove ``channel`` from ``group``; a channel not in it is ignored."""
        raise NotImplementedError(f"{type(self).__name__} does not implement group_discard()")

    async def group_send(
        self, group: str, message: dict[str, Any], *, history: bool | None = None
    ) -> StreamPosition | None:
        """Send ``message`` to every member of ``group``; full members are skipped and logged.

        With history (``history=True``, or ``None`` and the group matches the layer's
        ``history`` patterns) the message is first appended to the group's log; each member
        gets it with its position under ``POSITION_KEY`` and the position is returned.
        Without, nothing changes and ``None`` is returned (docs/channel-layer-spec.md).
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement group_send()")

    async def history(
        self,
        group: str,
        *,
        since: StreamPosition | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> HistoryResult:
        """The messages of ``group``'s log after ``since`` (oldest first) and its position now.

        Raise ``Unrecoverable`` when that cannot be all of them (the log was lost, they left
        it, more than ``limit`` were missed); never return part of them. With ``since=None``
        the last ``limit`` messages. Backends with the ``"history"`` extension implement it.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement history()")

    # Presence (docs/presence.md): backends with the ``"presence"`` extension implement these
    # through ``channelworks.layers.presence.PresenceLayer``.

    async def presence_track(
        self, group: str, channel: str, key: str, meta: dict[str, Any]
    ) -> dict[str, Any]:
        """Track ``channel`` in ``group`` as ``key`` with ``meta``; -> the meta as stored (with
        its ``phx_ref`` and ``joined_at``). The group's members get a ``presence.diff``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement presence_track()")

    async def presence_update(
        self, group: str, channel: str, key: str, meta: dict[str, Any]
    ) -> dict[str, Any]:
        """Replace the meta of ``channel``'s presence in ``group`` (a new ``phx_ref``)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement presence_update()")

    async def presence_untrack(self, group: str, channel: str) -> None:
        """Stop tracking ``channel`` in ``group``; one not tracked there is ignored."""
        raise NotImplementedError(f"{type(self).__name__} does not implement presence_untrack()")

    async def presence_untrack_all(self, channel: str) -> None:
        """Stop tracking ``channel`` in every group (a consumer's disconnect)."""
        raise NotImplementedError(
            f"{type(self).__name__} does not implement presence_untrack_all()"
        )

    async def presence(self, group: str) -> dict[str, list[dict[str, Any]]]:
        """Who is in ``group``: ``{key: [meta, ...]}``, one meta per tracking channel."""
        raise NotImplementedError(f"{type(self).__name__} does not implement presence()")

    async def flush(self) -> None:
        """Drop every message, channel and group of this layer."""
        raise NotImplementedError(f"{type(self).__name__} does not implement flush()")

    async def close(self) -> None:
        """Release the layer's connections and tasks; it must not be used afterwards.

        The base holds none; a layer written for Channels (which has no ``close``) inherits
        this, so closing every layer as a process stops works with it too."""

    # -- rules shared by every backend --------------------------------------------------------

    #: names are shorter than this (Channels' attribute)
    MAX_NAME_LENGTH: ClassVar[int] = names.MAX_NAME_LENGTH
    #: the rule a bad name breaks; ``.format("Channel")`` or ``.format("Group")`` is part of
    #: the ``InvalidChannelName`` message (Channels' attribute)
    invalid_name_error: ClassVar[str] = names.NAME_RULE

    def match_type_and_length(self, name: object) -> bool:
        """Whether ``name`` is a ``str`` shorter than ``MAX_NAME_LENGTH``."""
        return isinstance(name, str) and len(name) < self.MAX_NAME_LENGTH

    def require_valid_channel_name(self, name: object, receive: bool = False) -> bool:
        """True, or ``InvalidChannelName`` (a ``TypeError``) naming the rule ``name`` breaks."""
        names.require_channel_name(name, receive=receive)
        return True

    def require_valid_group_name(self, name: object) -> bool:
        """True, or ``InvalidChannelName`` (a ``TypeError``) naming the rule ``name`` breaks."""
        names.require_group_name(name)
        return True

    def valid_channel_names(self, channels: object, receive: bool = False) -> bool:
        """``require_valid_channel_name`` for each of a non-empty list of names."""
        if not isinstance(channels, list) or not channels:
            raise InvalidChannelName("channel", channels, "a non-empty list of names is needed")
        for name in channels:
            names.require_channel_name(name, receive=receive)
        return True

    def valid_channel_name(self, name: object, receive: bool = False) -> bool:
        """Deprecated (as in Channels): use ``require_valid_channel_name``."""
        warnings.warn(
            "valid_channel_name is deprecated, use require_valid_channel_name",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.require_valid_channel_name(name, receive)

    def valid_group_name(self, name: object) -> bool:
        """Deprecated (as in Channels): use ``require_valid_group_name``."""
        warnings.warn(
            "valid_group_name is deprecated, use require_valid_group_name",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.require_valid_group_name(name)

    @staticmethod
    def non_local_name(name: str) -> str:
        """The part of a channel name that routes to a process: up to and including ``!``."""
        return names.non_local_name(name)

    @staticmethod
    def compile_capacities(
        channel_capacity: CapacityPatterns,
    ) -> list[tuple[re.Pattern[str], int]]:
        """Turn ``{pattern: capacity}`` into ``[(regex, capacity)]``; globs become regexes."""
        compiled = []
        for pattern, value in channel_capacity.items():
            if isinstance(pattern, str):
                pattern = re.compile(fnmatch.translate(pattern))
            compiled.append((pattern, int(value)))
        return compiled

    def get_capacity(self, channel: str) -> int:
        """The capacity of ``channel``: the first matching pattern's, else ``capacity``."""
        for pattern, value in self.channel_capacity:
            if pattern.match(channel):
                return value
        return self.capacity

    def require_size(self, size: int, target: str) -> None:
        """Raise ``MessageTooLarge`` if a message of ``size`` encoded bytes for ``target`` (a
        channel or group) is over ``max_message_size``. Every backend measures and calls
        this, so the limit, and the error, are the same on all of them."""
        limit = self.max_message_size
        if limit is not None and size > limit:
            raise MessageTooLarge(
                f"A message of {size} bytes for {target!r} is over the {type(self).__name__}'s "
                f"max_message_size of {limit} bytes; send a reference to the data instead "
                "(or raise max_message_size)"
            )

    def report_group_full(self, group: str, message: Mapping[str, Any], skipped: int) -> None:
        """Count members ``group_send`` skipped because their channel was full, and log it
        (aggregated: one line per group per interval, with the count since the last)."""
        self.stats.group_full += skipped
        self.log_lines.event(
            logger,
            ("group_full", group),
            logging.WARNING,
            "group_send to {group!r} skipped {count} full channel(s) (message type {type!r}); "
            "counted in stats.group_full",
            skipped,
            group=group,
            type=message.get("type"),
        )


__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "FANOUT_BUCKETS",
    "BaseChannelLayer",
    "CapacityPatterns",
    "FanOut",
    "LayerStats",
]
