"""The connection to RabbitMQ: made, watched, and made again with backoff and jitter.

Rules of this file:
- one AMQP connection per layer, on the layer's home loop, with one *publisher* channel in
  confirm mode; ``on_connect`` (the layer) then declares its queues, binds its groups and
  starts its consumers, and returns the channels it opened so that they are watched too;
- when the connection or a watched channel closes, ``ready`` clears, the loss is logged at
  WARNING once, and the connection is made again after an exponential backoff (50 ms doubling
  up to ``max_backoff``) with jitter, so that a restarted broker is not hit by every process
  at the same instant; each recovery is logged and counted in ``stats.reconnects``;
- an operation waits for ``ready`` at most ``retry_timeout`` seconds, then raises
  ``RabbitMQUnavailable`` (counted in ``stats.unavailable``);
- a publish whose connection broke before the broker confirmed it is published again on the
  next connection, within the same ``retry_timeout``: a message may arrive twice, never zero
  times without a trace;
- publishes start in call order: ``publish_soon`` makes a task at once, and tasks start in the
  order they were made, so the frames of one sender's publishes reach the broker in its order
  whether or not the caller awaits the confirm.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import aiormq
from aiormq.abc import AbstractChannel, AbstractConnection, DeliveredMessage
from aiormq.connection import TCPTransportFactory, TLSTransportFactory, TransportFactory
from aiormq.exceptions import (
    AMQPConnectionError,
    ChannelClosed,
    ChannelInvalidStateError,
    DeliveryError,
)
from pamqp import commands as spec

from channelworks.layers.rabbitmq.errors import RabbitMQUnavailable
from channelworks.layers.rabbitmq.stats import RabbitMQLayerStats

logger = logging.getLogger("channelworks.layers.rabbitmq")

T = TypeVar("T")
OnConnect = Callable[[AbstractConnection], Awaitable[Sequence[AbstractChannel]]]

#: outcomes of a confirmed publish
ACKED, NACKED, RETURNED = 0, 1, 2
FIRST_BACKOFF = 0.05


def is_lost(exc: BaseException) -> bool:
    """Whether ``exc`` means the connection (or our channel on it) went away."""
    return (
        isinstance(exc, AMQPConnectionError | ChannelInvalidStateError | ConnectionError | OSError)
        or type(exc) is ChannelClosed
    )


class Link:
    """One connection to ``url``, kept up by ``run()``; see the rules above."""

    def __init__(
        self,
        url: str,
        *,
        stats: RabbitMQLayerStats,
        on_connect: OnConnect,
        retry_timeout: float,
        ssl_context: ssl.SSLContext | None = None,
        max_backoff: float = 2.0,
        name: str = "channelworks",
    ) -> None:
        self.url = url
        self.stats = stats
        self.on_connect = on_connect
        self.retry_timeout = retry_timeout
        self.ssl_context = ssl_context
        self.max_backoff = max_backoff
        self.name = name
        self.loop = asyncio.get_running_loop()
        self.ready = asyncio.Event()
        self.connection: AbstractConnection | None = None
        self.publisher: AbstractChannel | None = None
        self.generation = 0
        self.closing = False
        self.tasks: set[asyncio.Task[Any]] = set()
        self._control: AbstractChannel | None = None
        self._ids = itertools.count()
        self._task = self.loop.create_task(self.run(), name=f"rabbitmq-link-{name}")

    @property
    def host(self) -> str:
        """The URL without its password, for messages."""
        scheme, sep, rest = self.url.partition("://")
        return scheme + sep + rest.rpartition("@")[2]

    # -- the connection -----------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, run ``on_connect``, wait for a loss, back off, and again, until closed."""
        delay = 0.0
        lost_at: float | None = None
        while not self.closing:
            connection: AbstractConnection | None = None
            transport = _Transport(self.url)
            try:
                connection = await aiormq.connect(
                    self.url,
                    context=self.ssl_context,
                    transport_factory=transport,
                    client_properties={"connection_name": self.name},
                )
                publisher = await connection.channel(
                    publisher_confirms=True, on_return_raises=False
                )
                self.connection, self.publisher, self._control = connection, publisher, None
                watched = [connection.closing, publisher.closing]
                watched += [channel.closing for channel in await self.on_connect(connection)]
                self.generation += 1
                self.ready.set()
                if lost_at is not None:
                    self.stats.reconnects += 1
                    logger.warning(
                        "RabbitMQ layer reconnected to %s after %.1f s",
                        self.host,
                        time.monotonic() - lost_at,
                    )
                lost_at, delay = None, 0.0
                await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
                reason = _closed_reason(watched)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                reason = repr(exc)
            self.ready.clear()
            if connection is not None:
                await _close_quietly(connection)
            transport.close()
            if self.closing:
                return
            if lost_at is None:
                lost_at = time.monotonic()
                logger.warning(
                    "RabbitMQ layer %s %s (%s); trying again",
                    "lost its connection to" if self.generation else "cannot connect to",
                    self.host,
                    reason,
                )
            else:
                logger.debug("RabbitMQ layer still cannot connect to %s: %s", self.host, reason)
            delay = min(max(delay * 2, FIRST_BACKOFF), self.max_backoff)
            await asyncio.sleep(random.uniform(delay / 2, delay))

    async def wait(self, deadline: float, operation: str, target: str) -> AbstractChannel:
        """The publisher channel once connected; ``RabbitMQUnavailable`` after ``deadline``."""
        while True:
            publisher = self.publisher
            if self.ready.is_set() and publisher is not None and not publisher.is_closed:
                return publisher
            if self.closing:
                raise self.unavailable(operation, target, "the layer is closed")
            left = deadline - time.monotonic()
            if left <= 0:
                raise self.unavailable(operation, target, "no connection")
            try:
                await asyncio.wait_for(self.ready.wait(), left)
            except TimeoutError:
                raise self.unavailable(operation, target, "no connection") from None
            if publisher is not None and self.publisher is publisher and publisher.is_closed:
                await asyncio.sleep(0.01)  # the run loop has not seen the loss yet

    def unavailable(self, operation: str, target: str, reason: str) -> RabbitMQUnavailable:
        self.stats.unavailable += 1
        error = RabbitMQUnavailable(operation, target, self.host, reason)
        logger.error("RabbitMQ layer: %s", error)
        return error

    def deadline(self) -> float:
        return time.monotonic() + self.retry_timeout

    # -- operations ---------------------------------------------------------------------------

    def publish_soon(
        self, body: bytes, exchange: str, key: str, *, mandatory: bool, operation: str, target: str
    ) -> asyncio.Task[int]:
        """Start publishing now (in call order, see the rules); the task gives the outcome."""
        task = self.loop.create_task(
            self.publish(
                body, exchange, key, mandatory=mandatory, operation=operation, target=target
            )
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def publish(
        self, body: bytes, exchange: str, key: str, *, mandatory: bool, operation: str, target: str
    ) -> int:
        """Publish and wait for the broker's answer: ``ACKED``, ``NACKED`` or ``RETURNED``."""
        deadline = self.deadline()
        while True:
            publisher = await self.wait(deadline, operation, target)
            properties = spec.Basic.Properties(message_id=str(next(self._ids)), delivery_mode=1)
            try:
                # wait=False: do not wait for the socket to drain (the confirm is what counts)
                result = await publisher.basic_publish(  # type: ignore[call-arg]
                    body,
                    exchange=exchange,
                    routing_key=key,
                    properties=properties,
                    mandatory=mandatory,
                    wait=False,
                )
            except DeliveryError as exc:
                if isinstance(exc.frame, spec.Basic.Nack):
                    return NACKED
                raise
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
                self._lost(publisher)  # aiormq cancels confirms of a channel that closed
                self.stats.republished += 1
                continue
            except Exception as exc:
                if not is_lost(exc):
                    raise
                self._lost(publisher)
                self.stats.republished += 1
                continue
            return RETURNED if isinstance(result, DeliveredMessage) else ACKED

    async def call(
        self, operation: str, target: str, action: Callable[[AbstractChannel], Awaitable[T]]
    ) -> T:
        """Run ``action`` on the control channel (declarations, bindings), retrying a lost
        connection until ``retry_timeout``; a channel error (406, 404…) is raised as it is."""
        deadline = self.deadline()
        while True:
            publisher = await self.wait(deadline, operation, target)
            try:
                channel = self._control
                if channel is None or channel.is_closed:
                    assert self.connection is not None  # set whenever ready is
                    channel = self._control = await self.connection.channel(
                        publisher_confirms=False
                    )
                return await asyncio.wait_for(
                    action(channel), max(deadline - time.monotonic(), 0.1)
                )
            except TimeoutError:
                raise self.unavailable(operation, target, "no answer") from None
            except Exception as exc:
                if not is_lost(exc):
                    raise
                self._lost(publisher)

    def _lost(self, publisher: AbstractChannel) -> None:
        """A call failed because the connection went: wait for the next one."""
        if self.publisher is publisher:
            self.ready.clear()

    async def aclose(self, before: Callable[[], Awaitable[None]] | None = None) -> None:
        """Wait briefly for publishes in flight, run ``before`` if connected, then close."""
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=self.retry_timeout)
        if before is not None and self.ready.is_set():
            try:
                await asyncio.wait_for(before(), self.retry_timeout)
            except Exception as exc:
                logger.debug("RabbitMQ layer: cleanup before close failed: %r", exc)
        self.closing = True
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self.ready.clear()
        if self.connection is not None:
            await _close_quietly(self.connection)


class _Transport(TransportFactory):
    """aiormq's TCP or TLS transport, kept so that it is closed after a connection ends:
    aiormq leaves the socket of a connection the broker closed open (a ResourceWarning)."""

    def __init__(self, url: str) -> None:
        self.factory = TLSTransportFactory() if url.startswith("amqps:") else TCPTransportFactory()
        self.writer: asyncio.StreamWriter | None = None

    async def create(
        self, url: Any, **kwargs: Any
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, self.writer = await self.factory.create(url, **kwargs)
        return reader, self.writer

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _closed_reason(futures: list[asyncio.Future[Any]]) -> str:
    for future in futures:
        if future.done():
            if future.cancelled():
                return "closed"
            exc = future.exception()
            return repr(exc) if exc is not None else "closed"
    return "closed"


async def _close_quietly(connection: AbstractConnection) -> None:
    try:
        await asyncio.wait_for(connection.close(), 2)
    except Exception as exc:
        logger.debug("RabbitMQ layer: closing a connection failed: %r", exc)


__all__ = ["ACKED", "NACKED", "RETURNED", "Link", "is_lost"]
