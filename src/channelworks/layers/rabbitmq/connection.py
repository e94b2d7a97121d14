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
- publishes are pipelined: ``publish_now`` writes a publish's frames at once (no task, no lock)
  and registers its confirm under its delivery tag in aiormq's channel, which matches the
  broker's acks (``multiple`` too), nacks and returns; many are in flight at once. Frames
  written in one loop iteration leave in one socket write (``_Writer``), ours and aiormq's;
- publishes start in call order, so one sender's publishes reach the broker in its order
  whether or not the caller awaits the confirm; while any publish waits for a connection, later
  ones wait behind it;
- a publish whose connection broke before the broker confirmed it is published again on the
  next connection, in order, within ``retry_timeout``: a message may arrive twice, never zero
  times without a trace (``stats.republished``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar, cast

import aiormq
from aiormq.abc import AbstractChannel, AbstractConnection, DeliveredMessage
from aiormq.channel import Channel
from aiormq.connection import TCPTransportFactory, TLSTransportFactory, TransportFactory
from aiormq.exceptions import (
    AMQPConnectionError,
    ChannelClosed,
    ChannelInvalidStateError,
    DeliveryError,
)
from pamqp import commands as spec

from channelworks.layers.rabbitmq import frames
from channelworks.layers.rabbitmq.errors import RabbitMQUnavailable
from channelworks.layers.rabbitmq.stats import RabbitMQLayerStats
from channelworks.logs import AggregatedLog

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
        log_lines: AggregatedLog | None = None,
    ) -> None:
        self.url = url
        self.log_lines = log_lines if log_lines is not None else AggregatedLog()
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
        #: the connection's coalescing writer (our frames skip aiormq's write queue)
        self.writer: _Writer | None = None
        self.frame_max = 131072
        #: publishes written and not yet confirmed, by delivery tag of ``publisher``
        self._inflight: dict[int, _Publish] = {}
        #: publishes waiting for a connection: later ones wait behind them (order)
        self._later = 0
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
                self.writer = transport.writer
                self.frame_max = connection.connection_tune.frame_max or self.frame_max
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
                if connection is not None:  # closed by aclose() or abandon()
                    await _close_quietly(connection)
                transport.close()
                raise
            except Exception as exc:
                reason = repr(exc)
            self.ready.clear()
            self.writer = None
            self._requeue()
            if connection is not None:
                await _close_quietly(connection)
            transport.close()
            if self.closing:
                return
            if lost_at is None:
                lost_at = time.monotonic()
                # "Failure connecting ... Retrying": the words channels_rabbitmq logs, which
                # its users' log alerts may look for
                logger.warning(
                    "RabbitMQ layer: %s %s (%s). Retrying",
                    "lost its connection to" if self.generation else "Failure connecting to",
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
        self.log_lines.event(
            logger,
            ("unavailable", operation),
            logging.ERROR,
            "RabbitMQ layer: {error} ({count} failed {operation} call(s); counted in "
            "stats.unavailable)",
            error=error,
            operation=operation,
        )
        return error

    def deadline(self) -> float:
        return time.monotonic() + self.retry_timeout

    # -- operations ---------------------------------------------------------------------------

    def publish_now(
        self, body: bytes, exchange: str, key: str, *, mandatory: bool, operation: str, target: str
    ) -> asyncio.Future[int]:
        """Publish now (its frames leave with this loop iteration's other writes); the future
        gives the broker's answer: ``ACKED``, ``NACKED`` or ``RETURNED``, or
        ``RabbitMQUnavailable`` when no connection came for ``retry_timeout``.

        Cancelling the future does not cancel the publish. Many publishes are in flight at once,
        each matched to its confirm by delivery tag; none waits for another's confirm.
        """
        outcome: asyncio.Future[int] = self.loop.create_future()
        pending = _Publish(body, exchange, key, mandatory, operation, target, outcome)
        publisher = self.publisher
        if (
            self._later
            or self.writer is None
            or publisher is None
            or publisher.is_closed
            or not self.ready.is_set()
        ):
            self._publish_later(pending)
        else:
            self._write(publisher, pending)
        return outcome

    def _write(self, publisher: AbstractChannel, pending: _Publish) -> None:
        """Write ``pending``'s frames and register its confirm with aiormq's channel, which
        matches the broker's acks, nacks (``multiple`` too) and returns to delivery tags."""
        channel = cast(Channel, publisher)
        writer = self.writer
        assert writer is not None  # checked by the callers
        tag = channel.delivery_tag = channel.delivery_tag + 1
        confirm: asyncio.Future[Any] = self.loop.create_future()
        channel.confirmations[tag] = confirm
        message_id = None
        if pending.mandatory:  # aiormq finds the publish of a returned message by its id
            pending.message_id = str(next(self._ids))
            channel.message_id_delivery_tag[pending.message_id] = tag
            message_id = pending.message_id.encode()
        pending.tag, pending.channel = tag, channel
        self._inflight[tag] = pending
        confirm.add_done_callback(functools.partial(self._settled, pending))
        writer.write(
            frames.publish(
                channel.number,
                pending.exchange,
                pending.key,
                pending.mandatory,
                pending.body,
                message_id,
                self.frame_max,
            )
        )

    def _settled(self, pending: _Publish, confirm: asyncio.Future[Any]) -> None:
        if self._inflight.get(pending.tag) is not pending:
            return  # its connection was lost meanwhile: it is being published again
        del self._inflight[pending.tag]
        if pending.message_id is not None and pending.channel is not None:
            pending.channel.message_id_delivery_tag.pop(pending.message_id, None)
        if confirm.cancelled():
            self._again(pending)
            return
        exc = confirm.exception()
        if exc is None:
            result = RETURNED if isinstance(confirm.result(), DeliveredMessage) else ACKED
        elif isinstance(exc, DeliveryError) and isinstance(exc.frame, spec.Basic.Nack):
            result = NACKED
        else:
            self._again(pending)
            return
        if not pending.outcome.done():
            pending.outcome.set_result(result)

    def _again(self, pending: _Publish) -> None:
        """``pending``'s connection broke before its confirm: publish it on the next one."""
        self.stats.republished += 1
        self._publish_later(pending)

    def _requeue(self) -> None:
        """The connection is lost: every publish not yet confirmed goes again, in order."""
        lost = list(self._inflight.values())
        self._inflight.clear()
        for pending in lost:
            self._again(pending)

    def _publish_later(self, pending: _Publish) -> None:
        """Publish once connected; publishes made meanwhile queue behind (``_later``)."""
        self._later += 1
        task = self.loop.create_task(self._when_ready(pending))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _when_ready(self, pending: _Publish) -> None:
        try:
            publisher = await self.wait(self.deadline(), pending.operation, pending.target)
            self._write(publisher, pending)
        except asyncio.CancelledError:
            pending.outcome.cancel()
            raise
        except Exception as exc:
            if not pending.outcome.done():
                pending.outcome.set_exception(exc)
        finally:
            self._later -= 1

    def ack(self, channel: AbstractChannel, delivery_tag: int, *, multiple: bool) -> None:
        """Acknowledge a delivery of ``channel`` (written with this iteration's other frames);
        nothing if the channel is gone (RabbitMQ requeued its deliveries)."""
        writer = self.writer
        if writer is None or channel.is_closed or channel.connection is not self.connection:
            return
        writer.write(frames.ack(cast(Channel, channel).number, delivery_tag, multiple))

    async def call(
        self, operation: str, target: str, action: Callable[[AbstractChannel], Awaitable[T]]
    ) -> T:
        """Run ``action`` on the control channel (declarations, bindings), retrying a lost
        connection until ``retry_timeout``; a channel error (406, 404…) is raised as it is."""
        deadline = self.deadline()
        while True:
            publisher = await self.wait(deadline, operation, target)
            try:
                return await asyncio.wait_for(
                    action(await self.control()), max(deadline - time.monotonic(), 0.1)
                )
            except TimeoutError:
                raise self.unavailable(operation, target, "no answer") from None
            except Exception as exc:
                if not is_lost(exc):
                    raise
                self._lost(publisher)

    async def control(self) -> AbstractChannel:
        """The control channel, opened again if a channel error (404, 406…) closed it."""
        channel = self._control
        if channel is None or channel.is_closed:
            assert self.connection is not None  # set whenever ready is
            channel = self._control = await self.connection.channel(publisher_confirms=False)
        return channel

    def _lost(self, publisher: AbstractChannel) -> None:
        """A call failed because the connection went: wait for the next one."""
        if self.publisher is publisher:
            self.ready.clear()

    def abandon(self) -> None:
        """Stop using this link from another thread: its loop stopped (the caller checked). If
        that loop ever runs again, the link closes its connection there."""
        self.closing = True
        with contextlib.suppress(RuntimeError):  # the loop is closed: nothing runs there
            self.loop.call_soon_threadsafe(self._task.cancel)

    async def aclose(self, before: Callable[[], Awaitable[None]] | None = None) -> None:
        """Wait briefly for publishes in flight, run ``before`` if connected, then close."""
        waiting: list[asyncio.Future[Any]] = [p.outcome for p in self._inflight.values()]
        waiting += self.tasks
        if waiting:
            await asyncio.wait(waiting, timeout=self.retry_timeout)
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


class _Writer:
    """The connection's ``StreamWriter``, sending everything written during one loop iteration
    as one socket write: a publish is three frames and every ack one, and a write each would
    cost a system call each (the better part of the layer's CPU time before this)."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.transport = writer.transport
        self._chunks: list[bytes] = []
        self._loop = asyncio.get_running_loop()

    def write(self, data: bytes) -> None:
        if not self._chunks:
            self._loop.call_soon(self.flush)
        self._chunks.append(data)

    def flush(self) -> None:
        chunks = self._chunks
        if chunks:
            self._chunks = []
            if not self.writer.is_closing():
                self.writer.write(b"".join(chunks))

    async def drain(self) -> None:
        self.flush()
        await self.writer.drain()

    def can_write_eof(self) -> bool:
        return self.writer.can_write_eof()

    def write_eof(self) -> None:
        self.flush()
        self.writer.write_eof()

    def close(self) -> None:
        self.flush()
        self.writer.close()

    async def wait_closed(self) -> None:
        await self.writer.wait_closed()

    def is_closing(self) -> bool:
        return self.writer.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.writer.get_extra_info(name, default)


class _Transport(TransportFactory):
    """aiormq's TCP or TLS transport with a coalescing writer, kept so that it is closed after a
    connection ends: aiormq leaves the socket of a connection the broker closed open (a
    ResourceWarning)."""

    def __init__(self, url: str) -> None:
        self.factory = TLSTransportFactory() if url.startswith("amqps:") else TCPTransportFactory()
        self.writer: _Writer | None = None

    async def create(
        self, url: Any, **kwargs: Any
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await self.factory.create(url, **kwargs)
        self.writer = _Writer(writer)
        return reader, cast(asyncio.StreamWriter, self.writer)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class _Publish:
    """One publish until its confirm: what to publish again if the connection breaks first."""

    __slots__ = (
        "body",
        "channel",
        "exchange",
        "key",
        "mandatory",
        "message_id",
        "operation",
        "outcome",
        "tag",
        "target",
    )

    def __init__(
        self,
        body: bytes,
        exchange: str,
        key: str,
        mandatory: bool,
        operation: str,
        target: str,
        outcome: asyncio.Future[int],
    ) -> None:
        self.body = body
        self.exchange = exchange
        self.key = key
        self.mandatory = mandatory
        self.operation = operation
        self.target = target
        self.outcome = outcome
        self.tag = 0
        self.channel: Channel | None = None
        self.message_id: str | None = None


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
