"""Group history and resume, the part every backend shares (docs/channel-layer-spec.md).

A group with history keeps a bounded log of the messages sent to it, numbered by ``offset``
(1, 2, 3, ... with no gaps) within an ``epoch`` (a random token naming one life of that log).
A ``StreamPosition(offset, epoch)`` says "everything up to this offset of this log". A log
that is lost (a Redis restart without persistence, a flush, its TTL) comes back with a new
epoch, so an old position can never be mistaken for a position in the new log.

What lives here, once for every backend:

- ``StreamPosition`` and the message key that carries it (``POSITION_KEY``);
- ``HistoryOptions`` / ``HistoryConfig``: the ``history`` option of a layer (size and TTL per
  group pattern) and which group sends store their message;
- ``select``: given what a backend holds (epoch, the offsets it still has, the messages
  after ``since``), the ``HistoryResult`` or ``Unrecoverable``, so that every backend answers
  the same way and none can return a partial list that looks complete;
- ``ResumeFilter``: the merge of a resume with the live messages that follow, dropping by
  offset the ones the resume already delivered.

Rules: offsets are assigned by the backend's log in one atomic step with the append, so one
log never gives two messages the same offset and never skips one; recovery is all or nothing.
"""

from __future__ import annotations

import contextlib
import fnmatch
import re
import secrets
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from channelworks.exceptions import InvalidMessage, Unrecoverable

Message = dict[str, Any]

#: the key of a delivered (or recovered) message that holds its position, as
#: ``[offset, epoch]`` (a list: it crosses msgpack and JSON unchanged). Keys starting with
#: ``__`` belong to the layer: ``group_send(..., history=True)`` refuses a message that
#: already has this one.
POSITION_KEY = "__position"

#: messages a group's log keeps unless its options say otherwise
DEFAULT_SIZE = 100
#: seconds a group's log lives after its last message unless its options say otherwise
DEFAULT_TTL = 300.0
#: messages ``history()`` returns at most unless ``limit`` says otherwise
DEFAULT_LIMIT = 100


class StreamPosition(NamedTuple):
    """Where a group's log stands: ``offset`` of the last message, within ``epoch``.

    A tuple, so ``offset, epoch = position`` works and it compares by value. Clients store
    it (``list(position)`` is JSON-ready) and send it back when they reconnect; build it
    again with ``StreamPosition.parse``.
    """

    offset: int
    epoch: str

    @classmethod
    def parse(cls, value: object) -> StreamPosition:
        """A position from ``[offset, epoch]``/``(offset, epoch)`` or ``{"offset", "epoch"}``
        (what a client sends back); ``ValueError`` if it is neither."""
        if isinstance(value, Mapping):
            value = (value.get("offset"), value.get("epoch"))
        if isinstance(value, (list, tuple)) and len(value) == 2:
            offset, epoch = value
            if type(offset) is int and offset >= 0 and isinstance(epoch, str) and epoch:
                return cls(offset, epoch)
        raise ValueError(f"not a stream position ([offset, epoch]): {value!r}")

    @classmethod
    def of(cls, message: Mapping[str, Any]) -> StreamPosition | None:
        """The position a delivered message carries, or ``None`` (sent without history)."""
        value = message.get(POSITION_KEY)
        if value is None:
            return None
        return cls.parse(value)


def new_epoch() -> str:
    """A fresh epoch token (random: two lives of a log never share one)."""
    return secrets.token_hex(6)


def with_position(message: Message, position: StreamPosition) -> Message:
    """A copy of ``message`` carrying ``position`` under ``POSITION_KEY``."""
    stamped = dict(message)
    stamped[POSITION_KEY] = [position.offset, position.epoch]
    return stamped


def require_limit(limit: object) -> int:
    """``limit`` if it is an int >= 0 (how many messages a ``history`` call may return)."""
    if type(limit) is not int or limit < 0:
        raise ValueError(f"limit must be an int >= 0, got {limit!r}")
    return limit


def require_unpositioned(message: Mapping[str, Any]) -> None:
    """Refuse (``InvalidMessage``) a message for history that already holds a position."""
    if POSITION_KEY in message:
        raise InvalidMessage(
            f"a message sent with history must not hold the key {POSITION_KEY!r}: the layer "
            "sets it to the message's position"
        )


@dataclass(frozen=True)
class HistoryOptions:
    """How a group's log is kept: ``size`` messages at most (a backend may keep a few more,
    never fewer while they are within ``ttl``), ``ttl`` seconds after its last message."""

    size: int = DEFAULT_SIZE
    ttl: float = DEFAULT_TTL

    def __post_init__(self) -> None:
        if type(self.size) is not int or self.size < 1:
            raise ValueError(f"history size must be a positive int, got {self.size!r}")
        if not isinstance(self.ttl, (int, float)) or self.ttl <= 0:
            raise ValueError(f"history ttl must be a positive number, got {self.ttl!r}")

    @property
    def ttl_ms(self) -> int:
        return max(1, int(self.ttl * 1000))


_Options = Mapping[str, Any] | HistoryOptions
#: the ``history`` option: group pattern (glob or compiled regex) -> options
HistorySetting = (
    Mapping[str, _Options]
    | Mapping[re.Pattern[str], _Options]
    | Mapping[str | re.Pattern[str], _Options]
)


class HistoryConfig:
    """The ``history`` option of a layer: ``{group pattern: {"size": n, "ttl": seconds}}``.

    Patterns are globs (``"chat.*"``) or compiled regexes; the first match wins. A group
    send to a matching group stores its message (unless called with ``history=False``); one
    called with ``history=True`` stores it in any group, with the matching options or the
    defaults. Lookups are cached per group name, so a layer without the option pays one
    attribute test per ``group_send``.
    """

    __slots__ = ("_cache", "patterns")

    def __init__(self, setting: HistorySetting | None = None) -> None:
        self.patterns: list[tuple[re.Pattern[str], HistoryOptions]] = []
        items: list[tuple[str | re.Pattern[str], _Options]] = list((setting or {}).items())
        for pattern, value in items:
            if isinstance(value, HistoryOptions):
                options = value
            elif isinstance(value, Mapping):
                unknown = set(value) - {"size", "ttl"}
                if unknown:
                    raise ValueError(f"unknown history option(s) {sorted(unknown)} for {pattern!r}")
                options = HistoryOptions(**value)
            else:
                raise ValueError(f"history options for {pattern!r} must be a dict, got {value!r}")
            if isinstance(pattern, str):
                pattern = re.compile(fnmatch.translate(pattern))
            self.patterns.append((pattern, options))
        self._cache: dict[str, HistoryOptions | None] = {}

    def configured(self, group: str) -> HistoryOptions | None:
        """The options of the first pattern ``group`` matches, or ``None``."""
        try:
            return self._cache[group]
        except KeyError:
            pass
        found = next((o for p, o in self.patterns if p.match(group)), None)
        if len(self._cache) > 10_000:  # group names are unbounded: keep the cache bounded
            self._cache.clear()
        self._cache[group] = found
        return found

    def for_send(self, group: str, history: bool | None) -> HistoryOptions | None:
        """Whether a ``group_send(group, ..., history=history)`` stores its message, and how:
        ``None`` follows the patterns, ``True`` always stores, ``False`` never does."""
        if history is False or (history is None and not self.patterns):
            return None
        options = self.configured(group)
        if options is None and history:
            return HistoryOptions()
        return options

    def for_read(self, group: str) -> HistoryOptions:
        """The options that bound a read of ``group``'s log (its pattern's, or the defaults)."""
        return self.configured(group) or HistoryOptions()


@dataclass(frozen=True)
class HistoryResult:
    """What ``history()`` returns: the messages after ``since`` (oldest first, each with its
    position under ``POSITION_KEY``) and the log's current ``position``."""

    messages: list[Message]
    position: StreamPosition


def select(
    group: str,
    entries: Sequence[tuple[int, Message]],
    *,
    epoch: str,
    top: int,
    oldest: int | None,
    since: StreamPosition | None,
    limit: int,
) -> HistoryResult:
    """The answer to ``history(group, since=since, limit=limit)`` from what a backend holds.

    ``entries`` are ``(offset, message)`` in offset order: at least every entry after
    ``since`` (or the last ``limit`` when ``since`` is None); ``top`` the last offset the log
    ever gave in ``epoch``; ``oldest`` the first offset it still holds (None if empty).
    Raises ``Unrecoverable`` when ``since`` cannot be continued without a gap: another epoch,
    an offset beyond ``top``, an offset the log no longer holds the successor of, or more
    than ``limit`` messages missed.
    """
    position = StreamPosition(top, epoch)
    if since is None:
        kept = [(o, m) for o, m in entries][-limit:] if limit else []
        return HistoryResult(
            [with_position(m, StreamPosition(o, epoch)) for o, m in kept], position
        )
    if since.epoch != epoch:
        raise Unrecoverable(group, since, position, "the log was lost since (another epoch)")
    if since.offset > top:
        raise Unrecoverable(group, since, position, "the position is ahead of the log")
    missed = top - since.offset
    if missed == 0:
        return HistoryResult([], position)
    if oldest is None or oldest > since.offset + 1:
        raise Unrecoverable(group, since, position, "the messages after it left the log")
    if missed > limit:
        raise Unrecoverable(group, since, position, f"{missed} messages missed, over {limit}")
    after = [(o, m) for o, m in entries if o > since.offset]
    if len(after) != missed or after[0][0] != since.offset + 1:  # a hole: never partial
        raise Unrecoverable(group, since, position, "the log has a gap after it")
    return HistoryResult(_stamped(after, epoch), position)


def _stamped(entries: Sequence[tuple[int, Message]], epoch: str) -> list[Message]:
    return [with_position(m, StreamPosition(o, epoch)) for o, m in entries]


class ReadCounters(Protocol):
    """The counters of a layer's stats that ``counted_read`` adds to."""

    history_reads: int
    history_unrecoverable: int


@contextlib.contextmanager
def counted_read(stats: ReadCounters) -> Iterator[None]:
    """Count one ``history()`` call answered in ``stats.history_reads``, or one that raised
    ``Unrecoverable`` in ``stats.history_unrecoverable`` (every backend's ``history``)."""
    try:
        yield
    except Unrecoverable:
        stats.history_unrecoverable += 1
        raise
    stats.history_reads += 1


class ResumeFilter:
    """The merge of a resume and the live messages that follow it, for one subscriber.

    A subscriber joins the group *before* it reads the history, so a message sent between
    the two may come both ways. After delivering a resume that ended at position ``P``, call
    ``resumed(P)``; then ``fresh(message)`` is False for a live message already delivered
    (same epoch, offset <= ``P.offset``) and True for everything else (later offsets, other
    epochs, messages without a position). Marks are kept by epoch: an epoch names one log of
    one group, so one filter serves all the groups of a consumer.
    """

    __slots__ = ("_until",)

    def __init__(self) -> None:
        self._until: dict[str, int] = {}

    def resumed(self, position: StreamPosition) -> None:
        """Everything up to ``position`` has been delivered."""
        if position.offset > self._until.get(position.epoch, -1):
            self._until[position.epoch] = position.offset

    def fresh(self, message: Mapping[str, Any]) -> bool:
        """Whether ``message`` was not delivered by a resume already."""
        if not self._until:
            return True
        value = message.get(POSITION_KEY)
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            return True
        offset, epoch = value
        until = self._until.get(epoch)
        return until is None or not isinstance(offset, int) or offset > until


__all__ = [
    "DEFAULT_LIMIT",
    "DEFAULT_SIZE",
    "DEFAULT_TTL",
    "POSITION_KEY",
    "HistoryConfig",
    "HistoryOptions",
    "HistoryResult",
    "HistorySetting",
    "ReadCounters",
    "ResumeFilter",
    "StreamPosition",
    "counted_read",
    "new_epoch",
    "require_limit",
    "require_unpositioned",
    "select",
    "with_position",
]
