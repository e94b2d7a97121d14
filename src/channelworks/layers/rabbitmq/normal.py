"""Normal channels: a queue per channel in RabbitMQ, shared by every process that reads it.

Rules of this file:
- a process reads a normal channel through one consumer while it has receivers for it, with a
  prefetch window (``prefetch_count``): RabbitMQ deals messages round-robin between the
  consumers of every process, which is the load balancing of the contract;
- a delivery is acknowledged only when a ``receive`` hands it to its caller; one handed to a
  ``receive`` that was cancelled goes back, unacknowledged, to the front of the local buffer;
- a consumer whose channel has had no receiver for ``linger`` seconds is cancelled and what
  it buffered is rejected with ``requeue``, so another process gets it, in its place;
- when a connection breaks, RabbitMQ requeues every delivery not yet acknowledged: the local
  buffers are dropped (those messages come again) and consumers with receivers restart on the
  next connection. A message handed over just before the break may therefore come twice;
- an expired delivery (its header's deadline passed) is acknowledged, dropped and counted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from aiormq.abc import AbstractChannel, DeliveredMessage

from channelworks.exceptions import LayerClosed
from channelworks.layers.codec import Codec, UndecodableMessage
from channelworks.layers.rabbitmq import names
from channelworks.layers.rabbitmq.stats import RabbitMQLayerStats
from channelworks.logs import AggregatedLog

logger = logging.getLogger("channelworks.layers.rabbitmq")

Message = dict[str, Any]
Deliver = Callable[[DeliveredMessage], Coroutine[Any, Any, None]]
#: (AMQP channel it came on, delivery tag, deadline ms, payload)
Item = tuple[AbstractChannel, int, int, bytes]


class _Reader:
    __slots__ = ("buffer", "channel", "lingering", "starting", "tag", "used", "waiters")

    def __init__(self) -> None:
        self.buffer: deque[Item] = deque()
        self.waiters: deque[asyncio.Future[Item]] = deque()
        self.channel: AbstractChannel | None = None
        self.tag: str | None = None
        self.starting: asyncio.Task[None] | None = None
        self.lingering = False
        self.used = time.monotonic()


class NormalChannels:
    """This process's readers of normal channels."""

    def __init__(
        self,
        *,
        codec: Codec,
        stats: RabbitMQLayerStats,
        consume: Callable[[str, Deliver], Awaitable[tuple[AbstractChannel, str]]],
        linger: float = 1.0,
        log_lines: AggregatedLog | None = None,
    ) -> None:
        self.codec = codec
        self.log_lines = log_lines if log_lines is not None else AggregatedLog()
        self.stats = stats
        self.consume = consume
        self.linger = linger
        self.readers: dict[str, _Reader] = {}
        self.closed = False
        self._acks: list[tuple[AbstractChannel, int]] = []

    async def receive(self, channel: str) -> Message:
        reader = self.readers.get(channel)
        if reader is None:
            reader = self.readers[channel] = _Reader()
        while True:
            if self.closed:
                raise LayerClosed(channel)
            item = self._pop(reader)
            if item is None:
                if reader.tag is None:
                    await self._start(channel, reader)
                    continue
                future: asyncio.Future[Item] = asyncio.get_running_loop().create_future()
                reader.waiters.append(future)
                try:
                    item = await future
                except asyncio.CancelledError:
                    if future.done() and not future.cancelled():
                        reader.buffer.appendleft(future.result())  # not acknowledged yet
                    elif future in reader.waiters:
                        reader.waiters.remove(future)
                    self._idle(channel, reader)
                    raise
            self._ack(item)
            reader.used = time.monotonic()
            self._idle(channel, reader)
            try:
                return self.codec.decode(item[3])
            except UndecodableMessage as exc:
                self.stats.undecodable += 1
                self.log_lines.event(
                    logger,
                    ("undecodable", channel),
                    logging.ERROR,
                    "RabbitMQ layer dropped {count} message(s) on {channel!r} that could not "
                    "be decoded (latest: {exc}); counted in stats.undecodable",
                    channel=channel,
                    exc=exc,
                )

    async def _start(self, channel: str, reader: _Reader) -> None:
        """Start the consumer of ``channel`` (once, however many receivers ask at once)."""
        if reader.starting is None:
            reader.starting = asyncio.get_running_loop().create_task(self._consume(channel, reader))
        starting = reader.starting
        try:
            await asyncio.shield(starting)
        finally:
            if reader.starting is starting and starting.done():
                reader.starting = None

    async def _consume(self, channel: str, reader: _Reader) -> None:
        async def deliver(delivery: DeliveredMessage) -> None:
            await self._deliver(reader, delivery)

        reader.channel, reader.tag = await self.consume(channel, deliver)

    async def _deliver(self, reader: _Reader, delivery: DeliveredMessage) -> None:
        tag = getattr(delivery.delivery, "delivery_tag", None)
        if tag is None:
            return
        try:
            _, _, deadline, _, payload = names.split(delivery.body)
        except (ValueError, UnicodeDecodeError):
            deadline, payload = 0, b""
        item = (delivery.channel, tag, deadline, payload)
        while reader.waiters:
            waiter = reader.waiters.popleft()
            if not waiter.done():
                waiter.set_result(item)
                return
        reader.buffer.append(item)

    def _pop(self, reader: _Reader) -> Item | None:
        buffer = reader.buffer
        now = 0
        while buffer:
            item = buffer.popleft()
            deadline = item[2]
            if deadline:
                now = now or int(time.time() * 1000)
                if deadline <= now:
                    self.stats.expired += 1
                    self._ack(item)
                    continue
            return item
        return None

    def _ack(self, item: Item) -> None:
        if not self._acks:
            asyncio.get_running_loop().call_soon(self._send_acks)
        self._acks.append((item[0], item[1]))

    def _send_acks(self) -> None:
        acks, self._acks = self._acks, []
        task = asyncio.get_running_loop().create_task(_settle(acks, requeue=None))
        task.add_done_callback(_ignore_result)

    def _idle(self, channel: str, reader: _Reader) -> None:
        if reader.waiters or reader.lingering or reader.tag is None:
            return
        reader.lingering = True
        asyncio.get_running_loop().call_later(self.linger, self._check, channel, reader)

    def _check(self, channel: str, reader: _Reader) -> None:
        reader.lingering = False
        if reader.waiters or reader.tag is None or self.readers.get(channel) is not reader:
            return
        left = reader.used + self.linger - time.monotonic()
        if left > 0:
            reader.lingering = True
            asyncio.get_running_loop().call_later(left, self._check, channel, reader)
            return
        task = asyncio.get_running_loop().create_task(self._stop(channel, reader))
        task.add_done_callback(_ignore_result)

    async def _stop(self, channel: str, reader: _Reader) -> None:
        """Cancel an idle consumer and give back what it buffered, in order."""
        consumer, tag = reader.channel, reader.tag
        reader.channel = reader.tag = None
        if consumer is not None and tag is not None and not consumer.is_closed:
            await consumer.basic_cancel(tag)
        if reader.waiters:  # a receiver came meanwhile: it starts a consumer of its own
            return
        items = [item for item in reader.buffer if item[0] is consumer]
        reader.buffer.clear()
        if self.readers.get(channel) is reader:
            del self.readers[channel]
        await _settle([(item[0], item[1]) for item in items], requeue=True)

    def reconnected(self) -> list[str]:
        """A new connection: drop what the old one delivered (RabbitMQ requeued it); -> the
        channels whose consumers must start again (they have receivers waiting). A consumer
        that is starting right now starts on the new connection by itself."""
        again = []
        for channel, reader in list(self.readers.items()):
            reader.buffer.clear()
            if reader.starting is not None:
                continue
            reader.channel = reader.tag = None
            if reader.waiters:
                again.append(channel)
            else:
                del self.readers[channel]
        return again

    async def restart(self, channel: str) -> None:
        reader = self.readers.get(channel)
        if reader is not None and reader.tag is None:
            await self._consume(channel, reader)

    def flush(self) -> None:
        """Drop what this process buffered (acknowledged: flushed messages are gone)."""
        for reader in self.readers.values():
            while reader.buffer:
                self._ack(reader.buffer.popleft())

    def close(self) -> None:
        """End every waiting receive with ``LayerClosed``; nothing they wait for is taken."""
        self.closed = True
        for channel, reader in self.readers.items():
            for waiter in reader.waiters:
                if not waiter.done():
                    waiter.set_exception(LayerClosed(channel))
            reader.waiters.clear()


async def _settle(items: list[tuple[AbstractChannel, int]], *, requeue: bool | None) -> None:
    """Acknowledge (``requeue=None``) or reject ``items``, skipping closed channels."""
    for channel, tag in items:
        if channel.is_closed:
            continue  # RabbitMQ requeued it with the connection
        if requeue is None:
            await channel.basic_ack(tag, wait=False)
        else:
            await channel.basic_reject(tag, requeue=requeue, wait=False)


def _ignore_result(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.debug("RabbitMQ layer: settling deliveries failed: %r", task.exception())


__all__ = ["NormalChannels"]
