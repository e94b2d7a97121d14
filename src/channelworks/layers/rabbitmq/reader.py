"""The process reader: one consumer of this process's queue, demultiplexed into local channels.

Rules of this file:
- every message for this process (sends to its ``!`` channels, group messages for groups its
  channels joined, join/leave requests, flush markers) arrives on its one queue and is handled
  here, in queue order, by a handler that never suspends: a delivery lands as a whole before
  any receiver runs, so a flush marker falls exactly between "before" and "after";
- a delivery goes into ``local``, an ``InMemoryChannelLayer`` that does for this process what
  it does for any: hands messages to waiting receivers, queues them, expires them, keeps
  memberships (``group_expiry``), survives cancelled receives, reports full group members;
- a *send* whose channel is full in ``local`` is not dropped: it waits in ``overflow`` (in
  order, behind earlier ones) and the layer's ``receive`` serves it once ``local`` is empty;
  only when the overflow too holds ``capacity`` messages is it dropped, counted in
  ``stats.overflowed`` and logged at WARNING;
- deliveries are acknowledged once handled, many at a time (``multiple``) and at most once per
  loop iteration; deliveries not yet acknowledged when a connection breaks come again on the
  next one (at least once);
- an expired message is counted in ``stats.expired``; one that does not decode in
  ``stats.undecodable`` and logged at ERROR.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any, cast

from aiormq.abc import AbstractChannel, DeliveredMessage
from aiormq.channel import Channel

from channelworks.layers.codec import Codec, UndecodableMessage
from channelworks.layers.memory import InMemoryChannelLayer
from channelworks.layers.rabbitmq import names
from channelworks.layers.rabbitmq.groups import Memberships
from channelworks.layers.rabbitmq.stats import RabbitMQLayerStats
from channelworks.logs import AggregatedLog

logger = logging.getLogger("channelworks.layers.rabbitmq")

Message = dict[str, Any]


class ProcessReader:
    """Moves deliveries of the process queue into ``local``; ``deliver`` is the consumer."""

    def __init__(
        self,
        *,
        pid: str,
        local: InMemoryChannelLayer,
        codec: Codec,
        stats: RabbitMQLayerStats,
        memberships: Memberships,
        on_membership: Callable[[bytes, str, str], None],
        on_lapsed: Callable[[str], None],
        ack: Callable[[AbstractChannel, int], None],
        log_lines: AggregatedLog | None = None,
    ) -> None:
        self.pid = pid
        self.log_lines = log_lines if log_lines is not None else AggregatedLog()
        self.local = local
        self.codec = codec
        self.stats = stats
        self.memberships = memberships
        self.on_membership = on_membership
        self.on_lapsed = on_lapsed
        self.ack = ack
        self.overflow: dict[str, deque[tuple[int, Message]]] = {}
        self.flushes: dict[str, asyncio.Future[None]] = {}
        self._ack: tuple[AbstractChannel, int] | None = None
        self._acking = False

    async def start(
        self,
        channel: AbstractChannel,
        queue: str,
        prefetch: int,
        on_cancelled: Callable[[AbstractChannel], None] | None = None,
    ) -> None:
        """Consume ``queue`` on ``channel`` (a fresh channel of a new connection);
        ``on_cancelled(channel)`` when RabbitMQ cancels the consumer (the queue was deleted)."""
        self._ack = None
        await channel.basic_qos(prefetch_count=prefetch)
        ok = await channel.basic_consume(queue, self.deliver, no_ack=False)
        if on_cancelled is not None and ok.consumer_tag is not None:
            watch_cancel(channel, ok.consumer_tag, on_cancelled)

    async def deliver(self, delivery: DeliveredMessage) -> None:
        try:
            bodies = names.records(delivery.body)
        except ValueError:
            self._undecodable("a batch cut short")
            bodies = []
        for body in bodies:
            try:
                await self.handle(body)
            except Exception:  # one bad message must not stop the others
                logger.exception("RabbitMQ layer: cannot handle a message for this process")
        tag: int | None = getattr(delivery.delivery, "delivery_tag", None)
        if tag is not None:
            self._ack = (delivery.channel, tag)
            if not self._acking:
                self._acking = True
                asyncio.get_running_loop().call_soon(self._send_ack)

    def _send_ack(self) -> None:
        self._acking = False
        if self._ack is None:
            return
        channel, tag = self._ack
        self._ack = None
        self.ack(channel, tag)

    async def handle(self, body: bytes) -> None:
        """Handle one body; awaits only coroutines that never suspend (local's)."""
        try:
            kind, sent, deadline, targets, payload = names.split(body)
        except (ValueError, UnicodeDecodeError):
            self._undecodable("a body without a valid header")
            return
        if kind in (names.JOIN, names.LEAVE):
            self.on_membership(kind, targets[0], targets[1])
            return
        if kind == names.FLUSH:
            if targets[0] in self.flushes:  # not one delivered again after a reconnect
                await self.flushed(targets[0])
            return
        if deadline and deadline <= names.now_ms():
            self.stats.expired += 1
            return
        try:
            message = self.codec.decode(payload)
        except UndecodableMessage as exc:
            self._undecodable(str(exc))
            return
        if kind == names.GROUP:
            if targets[1:] == [self.pid]:
                return  # our own group_send: its sender delivered it here in memory
            await self.to_group(targets[0], sent / 1000, message)
        elif kind == names.SEND:
            await self._send(targets[0], message, deadline)

    async def to_group(self, group: str, sent: float, message: Message) -> None:
        """Fan a message sent to ``group`` at ``sent`` out to this process's members, dropping
        those that had lapsed by then (``on_lapsed`` when none is left)."""
        lapsed = self.memberships.lapsed(group, sent)
        if lapsed:
            for channel in lapsed:
                await self.local.group_discard(group, channel)
            if not self.memberships.wanted(group):
                self.on_lapsed(group)
        await self.local.group_send(group, message)

    async def _send(self, channel: str, message: Message, deadline: int) -> None:
        waiting = self.overflow.get(channel)
        if waiting is None:
            # Fresh from decoding: handed over without a copy (``put``), nothing suspends.
            if self.local.put(channel, message, asyncio.get_running_loop()):
                return
            waiting = self.overflow[channel] = deque()
        if len(waiting) < self.local.get_capacity(channel):
            waiting.append((deadline, message))
            return
        self.stats.overflowed += 1
        self.log_lines.event(
            logger,
            ("overflowed", channel),
            logging.WARNING,
            "RabbitMQ layer dropped {count} message(s) for {channel!r} (latest of type "
            "{type!r}): the channel holds twice its capacity in this process (its reader is "
            "too slow or gone); counted in stats.overflowed",
            channel=channel,
            type=message.get("type"),
        )

    def take(self, channel: str) -> Message | None:
        """The next unexpired overflow message of ``channel`` (call once ``local`` is empty)."""
        waiting = self.overflow.get(channel)
        if waiting is None:
            return None
        now = names.now_ms()
        message = None
        while waiting:
            deadline, candidate = waiting.popleft()
            if not deadline or deadline > now:
                message = candidate
                break
            self.stats.expired += 1
        if not waiting:
            del self.overflow[channel]
        return message

    def expect_flush(self, token: str) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.flushes[token] = future
        return future

    async def flushed(self, token: str | None) -> None:
        """Drop every message and membership held before the marker ``token`` arrived
        (``None``: now); receivers that are waiting keep waiting."""
        self.overflow.clear()
        await self.local.flush()
        future = self.flushes.pop(token, None) if token is not None else None
        if future is not None and not future.done():
            future.set_result(None)

    def _undecodable(self, reason: str) -> None:
        self.stats.undecodable += 1
        self.log_lines.event(
            logger,
            "undecodable",
            logging.ERROR,
            "RabbitMQ layer dropped {count} message(s) it cannot decode (latest: {reason}); "
            "counted in stats.undecodable",
            reason=reason,
        )


class _Consumers(dict[str, Any]):
    """aiormq's table of a channel's consumers, which tells when the broker cancels one.

    aiormq takes a consumer out of ``channel.consumers`` (``pop``) when the broker sends
    ``basic.cancel`` (its queue was deleted) and says nothing else. The watched consumers are
    never cancelled by the layer itself while their channel is open, so a ``pop`` of one of
    their tags is the broker's.
    """

    def __init__(self, consumers: dict[str, Any], channel: AbstractChannel) -> None:
        super().__init__(consumers)
        self.channel = channel
        self.watched: dict[str, Callable[[AbstractChannel], None]] = {}

    def pop(self, key: str, *default: Any) -> Any:
        on_cancelled = self.watched.pop(key, None)
        if on_cancelled is not None and key in self and not self.channel.is_closed:
            on_cancelled(self.channel)
        return super().pop(key, *default)


def watch_cancel(
    channel: AbstractChannel, tag: str, on_cancelled: Callable[[AbstractChannel], None]
) -> None:
    """Call ``on_cancelled(channel)`` if the broker cancels consumer ``tag`` of ``channel``."""
    aiormq_channel = cast(Channel, channel)
    consumers = aiormq_channel.consumers
    if not isinstance(consumers, _Consumers):
        consumers = aiormq_channel.consumers = _Consumers(consumers, channel)
    consumers.watched[tag] = on_cancelled


def unwatch_cancel(channel: AbstractChannel, tag: str) -> None:
    """Stop watching consumer ``tag`` (before the layer cancels it itself)."""
    consumers = cast(Channel, channel).consumers
    if isinstance(consumers, _Consumers):
        consumers.watched.pop(tag, None)


__all__ = ["ProcessReader", "unwatch_cancel", "watch_cancel"]
