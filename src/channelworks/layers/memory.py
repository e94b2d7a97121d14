"""The in-memory channel layer: one process, no I/O, the reference for the contract.

Rules of this file:
- a message handed to a waiting ``receive`` goes straight to its future; only when nobody
  waits is it queued;
- a channel's state is made the first time it is named, and only then is the name checked:
  the hot path (a consumer's reader receiving again and again) is a dict lookup;
- a reader that stops (its ``receive`` cancelled) frees its channel at once if nothing is
  queued; a sweep every ``sweep_interval`` seconds frees the other idle channels and drops
  expired messages and memberships, so memory stays bounded by live channels and unexpired
  messages. Receives that find messages queued and group sends run it when it is due, as
  Channels' layer cleans on receive and group_send; a plain send runs it only once it is a
  whole interval overdue, so an expired message stays listed in ``channels`` until then, as
  Channels' tests observe;
- a membership lapses once its channel has gone unread for ``group_expiry`` seconds (give or
  take one sweep), not ``group_expiry`` after it was added: each sweep renews the memberships
  of channels read since the previous sweep, so a consumer busy in a handler (for less than
  ``group_expiry``) keeps its groups;
- an accepted message is never dropped: one handed to a reader that was cancelled before it
  woke goes back to the front of its channel (to the next reader, or the queue, over
  capacity if need be);
- ``send`` and ``group_send`` measure the message's msgpack size once (``encoded_size``),
  before anything is delivered; ``put`` does not (its layer measured the message already),
  and neither does a layer built with ``max_message_size=None``;
- the clock is injected (``clock=``) so expiry is tested with plain numbers, not sleeps;
- a group's history log (``history``) is a deque of at most ``size`` entries, numbered by the
  log's own counter in the same step as the append (no await between); a log unused for its
  ``ttl`` is dropped whole (at the next access or sweep) and comes back with a new epoch.

Concurrency hazard: the layer belongs to one event loop at a time. A ``send`` from another
loop (``async_to_sync`` from a thread with its own loop) wakes the receiver through
``call_soon_threadsafe``; the bookkeeping itself is not locked, so do not drive one layer
from two threads at once.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from channelworks.exceptions import ChannelFull, InvalidChannelName
from channelworks.layers.base import DEFAULT_MAX_MESSAGE_SIZE, BaseChannelLayer, CapacityPatterns
from channelworks.layers.codec import encoded_size
from channelworks.layers.history import (
    DEFAULT_LIMIT,
    HistoryConfig,
    HistoryOptions,
    HistoryResult,
    HistorySetting,
    StreamPosition,
    counted_read,
    new_epoch,
    require_limit,
    require_unpositioned,
    select,
    with_position,
)
from channelworks.layers.names import require_channel_name, require_group_name, require_message
from channelworks.layers.presence import DEFAULT_INTERVAL, DEFAULT_TIMEOUT, PresenceLayer

Message = dict[str, Any]


class _Channel:
    __slots__ = ("capacity", "expiries", "more", "queue", "read", "waiter")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.read = False  # received from since the last sweep: someone is alive to read it
        # Most channels are a consumer's own, read by one waiter and rarely queued: the queue
        # is made on first use (an empty deque costs 600+ bytes), and the first waiter has a
        # slot of its own; ``more`` (made when a second one comes) holds the others, in order.
        # Invariant: ``more`` is empty or None while ``waiter`` is None.
        # Queued messages and their expiry times, side by side (both made on first use):
        # no ``(expires, message)`` tuple per message, which the garbage collector would keep
        # visiting while a room's burst waits in the queue (a tuple holding a dict stays
        # tracked; a float and a dict of strings are not). A message's expiry goes in before
        # the message and comes out after it, so a reader on another thread than a sender
        # (``async_to_sync`` with a loop of its own) never finds a message without its expiry.
        self.expiries: deque[float] | None = None
        self.queue: deque[Message] | None = None
        self.waiter: asyncio.Future[Message] | None = None
        self.more: list[asyncio.Future[Message]] | None = None

    def add_waiter(self, waiter: asyncio.Future[Message]) -> None:
        if self.waiter is None:
            self.waiter = waiter
        elif self.more is None:
            self.more = [waiter]
        else:
            self.more.append(waiter)

    def next_waiter(self) -> asyncio.Future[Message] | None:
        """Take the first waiter out of the line (``None`` if nobody waits)."""
        waiter, more = self.waiter, self.more
        self.waiter = more.pop(0) if more else None
        return waiter

    def remove_waiter(self, waiter: asyncio.Future[Message]) -> None:
        if self.waiter is waiter:
            self.next_waiter()
        elif self.more and waiter in self.more:
            self.more.remove(waiter)

    def take_waiters(self) -> list[asyncio.Future[Message]]:
        """Every waiter, in order; none is left in line."""
        waiters = [] if self.waiter is None else [self.waiter, *(self.more or ())]
        self.waiter = self.more = None
        return waiters


class _Log:
    """One group's history: the last ``size`` messages, numbered from 1 within ``epoch``."""

    __slots__ = ("entries", "epoch", "expires", "top")

    def __init__(self, size: int, expires: float) -> None:
        self.epoch = new_epoch()
        self.top = 0  # the last offset given; the next message gets top + 1
        self.entries: deque[tuple[int, Message]] = deque(maxlen=size)
        self.expires = expires


class InMemoryChannelLayer(PresenceLayer, BaseChannelLayer):
    """A complete channel layer inside one process: for tests, development and one-process sites.

    It cannot carry messages between processes; use the Redis or RabbitMQ layer for that.
    It refuses, as they do, a message over ``max_message_size`` encoded (``MessageTooLarge``)
    and an integer beyond 64 bits (``InvalidMessage``), so tests catch what production
    would refuse; other values msgpack cannot carry are kept (and measured as one byte).
    ``history``: ``{group pattern: {"size": n, "ttl": seconds}}``, the groups whose sends are
    kept in a log for ``history()`` (``group_send(..., history=True)`` works without it).
    ``presence_interval``: seconds presence changes are gathered into one diff per group
    (default 0.05; ``presence_timeout`` has no use in one process; docs/presence.md).
    """

    extensions: ClassVar[list[str]] = ["groups", "flush", "history", "presence"]
    presence_distributed = False  # one process: no tracker

    def __init__(
        self,
        expiry: float = 60,
        group_expiry: float = 86400,
        capacity: int = 100,
        channel_capacity: CapacityPatterns | None = None,
        *,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        clock: Callable[[], float] = time.monotonic,
        history: HistorySetting | None = None,
        presence_interval: float = DEFAULT_INTERVAL,
        presence_timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__(
            expiry, group_expiry, capacity, channel_capacity, max_message_size=max_message_size
        )
        self.setup_presence(presence_interval, presence_timeout)
        self.history_config = HistoryConfig(history)
        self._logs: dict[str, _Log] = {}
        self._clock = clock
        self._channels: dict[str, _Channel] = {}
        self._groups: dict[str, dict[str, float]] = {}
        self._prefix = secrets.token_hex(4)
        self._counter = itertools.count()
        self.sweep_interval = min(expiry, group_expiry, 30.0)
        self._next_sweep = clock() + self.sweep_interval
        self._overdue_sweep = self._next_sweep + self.sweep_interval

    # -- point to point -----------------------------------------------------------------------

    async def send(self, channel: str, message: Message) -> None:
        require_message(message)
        if self.max_message_size is not None:
            self.require_size(encoded_size(message), channel)
        now = self._clock()
        if now >= self._overdue_sweep:
            self.sweep(now)
        try:
            state = self._channels[channel]
        except (KeyError, TypeError):
            state = self._new_state(channel)
        if not self._deliver(channel, state, message.copy(), now + self.expiry, _running_loop()):
            raise ChannelFull(channel)

    def put(self, channel: str, message: Message, loop: asyncio.AbstractEventLoop | None) -> bool:
        """``send`` for a layer that feeds this one (Redis, RabbitMQ readers): ``message`` is
        fresh (decoded for this call, held by nobody else) so it is not copied, ``loop`` is
        the running loop (looked up once per batch by the caller), nothing suspends.

        False if the channel is full; ``InvalidMessage``/``InvalidChannelName`` as ``send``.
        """
        kind = message.get("type")
        if kind.__class__ is not str or not kind or kind[0] == "_":
            require_message(message)  # raises, with the reason
        now = self._clock()
        if now >= self._overdue_sweep:
            self.sweep(now)
        state = self._channels.get(channel)
        if state is None:
            state = self._new_state(channel)
        return self._deliver(channel, state, message, now + self.expiry, loop)

    def receive_nowait(self, channel: str) -> Message | None:
        try:
            state = self._channels[channel]
        except (KeyError, TypeError):
            state = self._new_state(channel)
        state.read = True
        queue = state.queue
        if queue:
            now = self._clock()
            if now >= self._next_sweep:
                self.sweep(now)
                state.read = True
            expiries = state.expiries
            assert expiries is not None  # made with the queue
            while queue:
                message = queue.popleft()
                if expiries.popleft() > now:
                    return message
                self.stats.expired += 1
        return None

    async def receive(self, channel: str) -> Message:
        message = self.receive_nowait(channel)
        if message is not None:
            return message
        return await self.receive_next(channel)

    async def receive_next(
        self, channel: str, loop: asyncio.AbstractEventLoop | None = None
    ) -> Message:
        """``receive`` for a reader that just found ``channel`` empty with ``receive_nowait``
        and has not let the loop run since: it waits at once (a consumer's reader, once per
        message it waits for). ``loop``: the running loop, if the caller knows it (finding
        it costs a system call on Python 3.11)."""
        state = self._channels[channel]
        if loop is None:
            loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Message] = loop.create_future()
        state.add_waiter(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                # Handed over, then cancelled before the caller saw it: give it back, first
                # in line, to the next reader or the queue.
                self.give_back(channel, waiter.result())
            else:
                state.remove_waiter(waiter)
            self._forget_if_idle(channel, state)  # a reader that stops frees its channel
            raise

    def reader_calls(
        self, channel: str, loop: asyncio.AbstractEventLoop
    ) -> tuple[Callable[[str], Message | None], Callable[[str], Awaitable[Message]]]:
        if type(self).receive is not InMemoryChannelLayer.receive:  # a subclass's own receive
            return self.receive_nowait, self.receive
        return self.receive_nowait, functools.partial(self.receive_next, loop=loop)

    def receive_later(self, channel: str) -> Message | asyncio.Future[Message]:
        """``receive`` without a coroutine, for a reader that waits on a future by itself (a
        consumer's idle reader: no coroutine frames per connection): a message already queued,
        else a future the next message of ``channel`` is handed to (or the error of
        ``end_receives``). A reader that stops before that future is done calls
        ``cancel_wait``, which does what cancelling ``receive`` does."""
        message = self.receive_nowait(channel)
        if message is not None:
            return message
        waiter: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._channels[channel].add_waiter(waiter)
        return waiter

    def cancel_wait(self, channel: str, waiter: asyncio.Future[Message]) -> None:
        """A ``receive_later`` future is no longer waited for: a message already handed to it
        goes back to ``channel``, first in line; otherwise it leaves the line, and a channel
        nobody reads any more is freed."""
        if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
            self.give_back(channel, waiter.result())
        state = self._channels.get(channel)
        if state is not None:
            state.remove_waiter(waiter)
            self._forget_if_idle(channel, state)

    async def new_channel(self, prefix: str = "specific") -> str:
        if not isinstance(prefix, str) or "!" in prefix:
            raise InvalidChannelName("channel prefix", prefix, "must be a str without '!'")
        return require_channel_name(f"{prefix}.inmemory{self._prefix}!{next(self._counter)}")

    # -- groups -------------------------------------------------------------------------------

    async def group_add(self, group: str, channel: str) -> None:
        require_group_name(group)
        require_channel_name(channel)
        self._groups.setdefault(group, {})[channel] = self._clock() + self.group_expiry

    async def group_discard(self, group: str, channel: str) -> None:
        require_group_name(group)
        require_channel_name(channel)
        members = self._groups.get(group)
        if members is not None:
            members.pop(channel, None)
            if not members:
                del self._groups[group]

    async def group_send(
        self, group: str, message: Message, *, history: bool | None = None
    ) -> StreamPosition | None:
        require_group_name(group)
        require_message(message)
        position = None
        if history is not None or self.history_config.patterns:
            options = self.history_config.for_send(group, history)
            if options is not None:
                position, message = self._append(group, message, options)
        if position is None and self.max_message_size is not None:
            self.require_size(encoded_size(message), group)
        now = self._clock()
        if now >= self._next_sweep:
            self.sweep(now)
        members = self._groups.get(group)
        if not members:
            return position
        loop = _running_loop()
        channels = self._channels
        expires = now + self.expiry
        reached = len(members)  # less the skipped and the expired, below
        skipped = 0
        expired = []
        for channel, until in members.items():
            state = channels.get(channel)
            if until <= now:
                if state is None or not (state.read or state.waiter is not None):
                    expired.append(channel)
                    continue
                members[channel] = now + self.group_expiry  # still read: it stays
            if state is None:
                state = self._new_state(channel)
            # The two common cases inlined (a consumer's reader is waiting; or it is busy and
            # the message joins its queue); everything else goes through _deliver.
            waiter = state.waiter
            if waiter is not None:
                if not state.more and not waiter.done() and waiter.get_loop() is loop:
                    state.waiter = None
                    waiter.set_result(message.copy())
                    continue
            else:
                queue = state.queue
                if queue is not None and len(queue) < state.capacity:
                    state.expiries.append(expires)  # type: ignore[union-attr]  # with queue
                    queue.append(message.copy())
                    continue
            if not self._deliver(channel, state, message.copy(), expires, loop):
                skipped += 1
        for channel in expired:
            del members[channel]
        if not members:
            del self._groups[group]
        delivered = reached - skipped - len(expired)
        try:  # self.fanout.observe(delivered), inlined
            self.fanout.small[delivered] += 1
        except IndexError:
            self.fanout.observe_large(delivered)
        if skipped:
            self.report_group_full(group, message, skipped)
        return position

    # -- history ------------------------------------------------------------------------------

    async def history(
        self,
        group: str,
        *,
        since: StreamPosition | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> HistoryResult:
        require_group_name(group)
        require_limit(limit)
        _, log = self._next_position(group, self.history_config.for_read(group))
        entries = log.entries
        with counted_read(self.stats):
            return select(
                group,
                list(entries),
                epoch=log.epoch,
                top=log.top,
                oldest=entries[0][0] if entries else None,
                since=since,
                limit=limit,
            )

    def _append(
        self, group: str, message: Message, options: HistoryOptions
    ) -> tuple[StreamPosition, Message]:
        """Append ``message`` to ``group``'s log (once it is known to fit the size limit,
        measured with its position); -> its position and the copy members get."""
        require_unpositioned(message)
        position, log = self._next_position(group, options)
        stamped = with_position(message, position)
        if self.max_message_size is not None:
            self.require_size(encoded_size(stamped), group)
        # no await since _next_position: the offset is still the next one
        log.top = position.offset
        log.entries.append((position.offset, message.copy()))
        log.expires = self._clock() + options.ttl
        self.stats.history_appends += 1
        return position, stamped

    def _next_position(self, group: str, options: HistoryOptions) -> tuple[StreamPosition, _Log]:
        """The position the next message of ``group`` gets, and its log (made, with a new
        epoch, if it had none or it expired: the old one is gone for good)."""
        now = self._clock()
        log = self._logs.get(group)
        if log is None or log.expires <= now:
            log = self._logs[group] = _Log(options.size, now + options.ttl)
        return StreamPosition(log.top + 1, log.epoch), log

    def members(self, group: str) -> list[str]:
        """The channels in ``group`` now (lapsed ones may be listed until the next sweep)."""
        return list(self._groups.get(group, ()))

    def group_names(self) -> list[str]:
        """The groups with at least one member (lapsed ones may be listed until the next sweep).

        The Redis layer reads these to keep its process's own memberships alive in Redis.
        """
        return list(self._groups)

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def channels(self) -> dict[str, deque[tuple[float, Message]]]:
        """A snapshot of the channels holding messages: name to a copy of its queue of
        ``(expires, message)`` (Channels' attribute, for tests).
        Expired messages stay listed until a receive or a sweep drops them."""
        return {
            name: deque(zip(state.expiries or (), state.queue, strict=False))
            for name, state in self._channels.items()
            if state.queue
        }

    def _clean_expired(self) -> None:
        """Drop expired messages and memberships now (Channels' name for ``sweep``)."""
        self.sweep(self._clock())

    def _remove_from_groups(self, channel: str) -> None:
        """Take ``channel`` out of every group (Channels' name)."""
        for group in [g for g, members in self._groups.items() if channel in members]:
            members = self._groups[group]
            del members[channel]
            if not members:
                del self._groups[group]

    async def flush(self) -> None:
        """Drop all queued messages, groups and presences (no diff sent); receivers that are
        waiting keep waiting."""
        if self._presences is not None:
            self._presences.drop()
        self._groups.clear()
        self._logs.clear()
        for channel, state in list(self._channels.items()):
            state.queue = state.expiries = None
            self._forget_if_idle(channel, state)

    async def close(self) -> None:
        await self.close_presence()  # leaves sent while the groups still exist
        await self.flush()
        self.log_lines.flush()

    def end_receives(self, error: Callable[[str], BaseException]) -> int:
        """End every ``receive`` waiting now with ``error(channel)``; nothing they waited for
        is taken. The cross-process layers call it as they close, so that a reader of one of
        their channels does not wait forever. Returns how many ended."""
        ended = 0
        for channel, state in list(self._channels.items()):
            for waiter in state.take_waiters():
                if not waiter.done():
                    waiter.set_exception(error(channel))
                    ended += 1
            self._forget_if_idle(channel, state)
        return ended

    # -- bookkeeping (no awaits below: each method runs to completion) -----------------------

    def _new_state(self, channel: str) -> _Channel:
        require_channel_name(channel)  # only here: a channel with state has a valid name
        state = self._channels[channel] = _Channel(self.get_capacity(channel))
        return state

    def _deliver(
        self,
        channel: str,
        state: _Channel,
        message: Message,
        expires: float,
        loop: asyncio.AbstractEventLoop | None,
        *,
        give_back: bool = False,
    ) -> bool:
        """Hand ``message`` to a waiter or queue it until ``expires``; False if it is full.

        With ``give_back`` the message was accepted before (its reader was cancelled): it goes
        to the front of the queue and capacity does not apply, since refusing it now would
        lose it without a trace.
        """
        while (waiter := state.next_waiter()) is not None:
            if waiter.done():
                continue
            waiter_loop = waiter.get_loop()
            if waiter_loop is loop:
                waiter.set_result(message)
            else:
                waiter_loop.call_soon_threadsafe(self._resolve_late, channel, waiter, message)
            return True
        queue, expiries = state.queue, state.expiries
        if queue is None or expiries is None:
            expiries = state.expiries = deque()  # first: see _Channel
            queue = state.queue = deque()
        if give_back:  # by the reader that took it, on its own loop's thread
            queue.appendleft(message)
            expiries.appendleft(expires)
            return True
        if len(queue) >= state.capacity:
            self._drop_expired(state, expires - self.expiry)
            if len(queue) >= state.capacity:
                return False
        expiries.append(expires)
        queue.append(message)
        return True

    def give_back(self, channel: str, message: Message) -> None:
        """Return an accepted message to the front of its channel (next reader or queue): a
        reader that took it and ends before handling it (a consumer's, see reader.py)."""
        try:
            state = self._channels[channel]
        except KeyError:  # its reader stopped and freed the channel meanwhile
            state = self._new_state(channel)
        expires = self._clock() + self.expiry
        self._deliver(channel, state, message, expires, _running_loop(), give_back=True)

    def _resolve_late(
        self, channel: str, waiter: asyncio.Future[Message], message: Message
    ) -> None:
        # Runs on the waiter's loop. If the waiter was cancelled while the message crossed
        # threads, the message goes back to its channel (looked up again: it may be new).
        if waiter.done():
            self.give_back(channel, message)
        else:
            waiter.set_result(message)

    def _drop_expired(self, state: _Channel, now: float) -> None:
        queue, expiries = state.queue, state.expiries
        while queue and expiries and expiries[0] <= now:
            queue.popleft()
            expiries.popleft()
            self.stats.expired += 1

    def _forget_if_idle(self, channel: str, state: _Channel) -> None:
        if not state.queue and state.waiter is None and self._channels.get(channel) is state:
            del self._channels[channel]

    def sweep(self, now: float | None = None) -> None:
        """Drop expired messages and memberships; refresh memberships of channels being read.

        Runs by itself during receives, sends and group sends; call it directly only in tests.
        """
        now = self._clock() if now is None else now
        self._next_sweep = now + self.sweep_interval
        self._overdue_sweep = self._next_sweep + self.sweep_interval
        refreshed = now + self.group_expiry
        channels = self._channels
        for group, members in list(self._groups.items()):
            for channel, until in list(members.items()):
                reader = channels.get(channel)
                if reader is not None and (reader.read or reader.waiter is not None):
                    members[channel] = refreshed  # a channel still read keeps its memberships
                elif until <= now:
                    del members[channel]
            if not members:
                del self._groups[group]
        for group in [g for g, log in self._logs.items() if log.expires <= now]:
            del self._logs[group]
        for channel, state in list(channels.items()):
            self._drop_expired(state, now)
            if not state.read:
                self._forget_if_idle(channel, state)
            state.read = False

    def __repr__(self) -> str:
        return (
            f"<InMemoryChannelLayer channels={len(self._channels)} groups={len(self._groups)} "
            f"capacity={self.capacity} expiry={self.expiry}>"
        )


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


__all__ = ["InMemoryChannelLayer"]
