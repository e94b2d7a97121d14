"""``RabbitMQChannelLayer``: the channel layer contract over RabbitMQ, for many processes.

How it moves messages (docs/rabbitmq.md has the whole design; names.py the names):

- a *process-local* channel (``new_channel()``, with ``!``) is read by its process only: a
  send publishes to that process's queue through the default exchange, and the process's one
  ``ProcessReader`` moves deliveries into a local ``InMemoryChannelLayer`` (waiters,
  cancellation, expiry, memberships);
- a *normal* channel is a queue of its own that every process may consume (normal.py):
  RabbitMQ deals its messages round-robin between readers;
- a group is a routing key of the ``{prefix}.groups`` direct exchange: ``group_send`` is one
  publish, copied by RabbitMQ to every process queue bound under the group's name, and fanned
  out by each process to its member channels (groups.py);
- capacity: a normal channel's queue has ``x-max-length`` = its capacity with
  ``reject-publish``, so the publisher confirm is a nack and ``send`` raises ``ChannelFull``;
  a process queue is bounded by ``process_capacity`` the same way, and each ``!`` channel by
  its capacity in the receiving process (reader.py).

Concurrency hazard: the connection, the reader and the local layer belong to the *home* loop,
the first loop the layer does I/O on; a call from another loop (``async_to_sync`` in a thread)
is run on the home loop and awaited from there, unless the home loop stopped or closed: then
the layer starts again on the calling loop (``_elsewhere``). The bookkeeping is not locked:
drive one layer from one loop at a time, plus such calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import ssl
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, ClassVar, TypeVar

from aiormq.abc import AbstractChannel, AbstractConnection, DeliveredMessage
from aiormq.exceptions import ChannelClosed, ChannelNotFoundEntity, ChannelPreconditionFailed

from channelworks.exceptions import ChannelFull, InvalidChannelName
from channelworks.layers.base import DEFAULT_MAX_MESSAGE_SIZE, BaseChannelLayer, CapacityPatterns
from channelworks.layers.codec import Codec
from channelworks.layers.history import (
    DEFAULT_LIMIT,
    HistoryConfig,
    HistoryResult,
    HistorySetting,
    StreamPosition,
    counted_read,
    new_epoch,
    require_limit,
    require_unpositioned,
    with_position,
)
from channelworks.layers.memory import InMemoryChannelLayer
from channelworks.layers.names import require_channel_name, require_group_name, require_message
from channelworks.layers.presence import DEFAULT_INTERVAL, DEFAULT_TIMEOUT, PresenceLayer
from channelworks.layers.rabbitmq import names
from channelworks.layers.rabbitmq.compat_names import ChannelsRabbitmqNames
from channelworks.layers.rabbitmq.connection import NACKED, RETURNED, Link, is_lost
from channelworks.layers.rabbitmq.errors import ForeignChannel, LayerClosed, RabbitMQUnavailable
from channelworks.layers.rabbitmq.groups import Memberships
from channelworks.layers.rabbitmq.history import Logs
from channelworks.layers.rabbitmq.loops import run_at
from channelworks.layers.rabbitmq.normal import NormalChannels
from channelworks.layers.rabbitmq.reader import ProcessReader
from channelworks.layers.rabbitmq.stats import RabbitMQLayerStats

logger = logging.getLogger("channelworks.layers.rabbitmq")

Message = dict[str, Any]
T = TypeVar("T")

DEFAULT_HOST = "amqp://guest:guest@127.0.0.1:5672/"
#: options accepted and ignored, so other layers' settings run unchanged
IGNORED_OPTIONS: frozenset[str] = frozenset()
#: channels_rabbitmq's default local_capacity and remote_capacity
CHANNELS_RABBITMQ_CAPACITY = 100
#: group_expiry of the local layer: memberships lapse by groups.py's rule instead
NEVER = 10.0**9
#: most bodies, and about the most bytes, of one batch to a process queue
BATCH_RECORDS = 256
BATCH_BYTES = 128 * 1024


class _Batch:
    """Bodies for one process queue made in one loop iteration, and their callers' futures."""

    __slots__ = ("bodies", "futures", "operation", "size", "target")

    def __init__(self, operation: str, target: str) -> None:
        self.operation = operation
        self.target = target
        self.bodies: list[bytes] = []
        self.futures: list[asyncio.Future[int]] = []
        self.size = 0

    def add(self, body: bytes, future: asyncio.Future[int]) -> None:
        self.bodies.append(body)
        self.futures.append(future)
        self.size += len(body)

    def settle(self, outcome: asyncio.Future[int]) -> None:
        """The batch's outcome is each body's (a caller that was cancelled is skipped)."""
        exc = None if outcome.cancelled() else outcome.exception()
        for future in self.futures:
            if future.done():
                continue
            if outcome.cancelled():
                future.cancel()
            elif exc is not None:
                future.set_exception(exc)
            else:
                future.set_result(outcome.result())


class RabbitMQChannelLayer(PresenceLayer, ChannelsRabbitmqNames, BaseChannelLayer):
    """A channel layer over RabbitMQ: many processes, many machines; see docs/rabbitmq.md.

    Options: ``host`` (an ``amqp://`` or ``amqps://`` URL), ``prefix`` (of every queue and
    exchange name), ``expiry``, ``group_expiry``, ``capacity``, ``channel_capacity``,
    ``symmetric_encryption_keys`` as in every cross-process layer; ``process_capacity``
    (messages a process queue holds before sends to its channels get ``ChannelFull``, default
    10000), ``prefetch_count`` (deliveries of a normal channel a process holds unacknowledged,
    default 20), ``process_timeout`` (seconds after which RabbitMQ deletes the queue of a
    process that stopped reading, with its memberships; default 60), ``retry_timeout``
    (seconds an operation waits for a lost connection before ``RabbitMQUnavailable``, default
    5), ``ssl_context``, ``groups_exchange``. channels_rabbitmq's ``local_capacity`` and
    ``remote_capacity`` (default 100 each) set ``capacity`` to their sum (a channel holds what
    its process may hold in memory plus its queue, as there) and ``process_capacity`` to
    ``remote_capacity``; its ``local_expiry`` is how long a message may wait in this process
    for a ``receive`` (default ``expiry``).
    ``max_message_size`` (bytes a message may take encoded, encryption included; default
    1 MiB, ``None`` for no limit; over it ``send``/``group_send`` raise ``MessageTooLarge``),
    as on every layer. ``history``: ``{group pattern: {"size": n, "ttl": seconds}}``, the
    groups whose sends are kept in a log (a stream queue, history.py) for ``history()``.
    ``presence_interval`` and ``presence_timeout`` as on every layer (docs/presence.md).
    """

    extensions: ClassVar[list[str]] = [*BaseChannelLayer.extensions, "history", "presence"]
    stats: RabbitMQLayerStats

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        prefix: str = "asgi",
        expiry: float = 60,
        group_expiry: float | None = 86400,
        capacity: int = 100,
        channel_capacity: CapacityPatterns | None = None,
        symmetric_encryption_keys: Iterable[str | bytes] | None = None,
        *,
        process_capacity: int = 10000,
        prefetch_count: int = 20,
        process_timeout: float = 60,
        retry_timeout: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
        groups_exchange: str | None = None,
        local_capacity: int | None = None,
        remote_capacity: int | None = None,
        local_expiry: float | None = None,
        linger: float = 1.0,
        deliver_locally: bool = True,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        history: HistorySetting | None = None,
        presence_interval: float = DEFAULT_INTERVAL,
        presence_timeout: float = DEFAULT_TIMEOUT,
        **options: Any,
    ) -> None:
        self.setup_presence(presence_interval, presence_timeout)
        unknown = set(options) - IGNORED_OPTIONS
        if unknown:
            raise TypeError(f"RabbitMQChannelLayer got unknown option(s) {sorted(unknown)}")
        if local_capacity is not None or remote_capacity is not None:
            # channels_rabbitmq: a process holds local_capacity messages in memory, then its
            # queue takes remote_capacity more before senders get ChannelFull.
            local_capacity = local_capacity or CHANNELS_RABBITMQ_CAPACITY
            remote_capacity = remote_capacity or CHANNELS_RABBITMQ_CAPACITY
            capacity = local_capacity + remote_capacity
            process_capacity = remote_capacity
        if local_expiry is not None and local_expiry <= 0:
            raise ValueError(f"local_expiry must be positive, got {local_expiry!r}")
        self.local_expiry = local_expiry
        if group_expiry is None:  # channels_rabbitmq's way of saying "the default"
            group_expiry = 86400
        super().__init__(
            expiry, group_expiry, capacity, channel_capacity, max_message_size=max_message_size
        )
        self._capacities = channel_capacity
        self.history_config = HistoryConfig(history)
        if not isinstance(host, str) or not host.startswith(("amqp://", "amqps://")):
            raise ValueError(f"host must be an amqp:// or amqps:// URL, got {host!r}")
        if process_capacity < 1 or prefetch_count < 1:
            raise ValueError("process_capacity and prefetch_count must be at least 1")
        if process_timeout <= 0 or retry_timeout < 0 or linger <= 0:
            raise ValueError(
                "process_timeout and linger must be positive, retry_timeout not negative"
            )
        self.host = host
        self.names = names.Names(prefix)
        self.prefix = prefix
        self.groups_exchange = groups_exchange or self.names.groups
        self.codec = Codec(symmetric_encryption_keys)
        self.process_capacity = process_capacity
        self.prefetch_count = prefetch_count
        self.process_timeout = process_timeout
        self.retry_timeout = retry_timeout
        self.ssl_context = ssl_context
        self.linger = linger
        self.deliver_locally = deliver_locally
        self._plain = Codec()
        self.stats = RabbitMQLayerStats()
        #: this layer's process id: its channels are ``{prefix}.{pid}!{n}``
        self.pid = secrets.token_hex(8)
        self.queue = self.names.process(self.pid)
        self._marker = f".{self.pid}!"
        #: own channels are ``...{_marker}n``, or ``{_bare}n`` once ``_queue_name`` is set
        self._bare = self._marker
        self._expiry_ms = int(expiry * 1000)
        self._counter = itertools.count()
        self._link: Link | None = None
        self._dead_logged: set[str] = set()
        self._expired_logged = 0
        #: set by close(): every later call raises LayerClosed (channels_rabbitmq's StopConsumer)
        self._closed = False
        #: this process's queue was declared once: a later connection that misses it counts it
        self._queue_made = False
        self._reset()

    def _reset(self) -> None:
        """The per-loop state: made at start, made again if the home loop was closed."""
        logs = getattr(self, "logs", None)
        if logs is not None:
            logs.close()  # its sweeper
        sweeper = getattr(self, "_sweeper", None)
        if sweeper is not None:
            sweeper.cancel()
        # Memberships lapse by this layer's rule (groups.py), never by the local layer's.
        # Sizes are measured here, as sent: the local layer does not measure again.
        local_expiry = self.expiry if self.local_expiry is None else self.local_expiry
        self.local = InMemoryChannelLayer(
            local_expiry, NEVER, self.capacity, self._capacities, max_message_size=None
        )
        self.local.stats = self.stats  # one set of counters for the whole layer
        self.local.fanout = self.fanout  # and of fan-outs: the reader delivers through local
        self.bindings = Memberships(self.group_expiry)
        self.reader = ProcessReader(
            pid=self.pid,
            local=self.local,
            codec=self.codec,
            stats=self.stats,
            memberships=self.bindings,
            on_membership=self._requested,
            on_lapsed=self._lapsed,
            ack=self._ack_process,
            log_lines=self.log_lines,
        )
        self.normal = NormalChannels(
            codec=self.codec,
            stats=self.stats,
            consume=self._consume_normal,
            linger=self.linger,
            log_lines=self.log_lines,
        )
        self._declared: set[str] = set()
        self._bind_lock: asyncio.Lock | None = None
        self._batches: dict[str, _Batch] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self._normal_channel: AbstractChannel | None = None
        self.logs = Logs(
            names_=self.names,
            codec=self.codec,
            stats=self.stats,
            link=self._open_link,
            retry_timeout=self.retry_timeout,
        )

    # -- the connection -----------------------------------------------------------------------

    def _elsewhere(self) -> asyncio.AbstractEventLoop | None:
        """The home loop if this call runs on another one (it must be forwarded there)."""
        link = self._link
        if link is None:
            return None
        running = asyncio.get_running_loop()
        if link.loop is running:
            return None
        if link.loop.is_closed() or not link.loop.is_running():
            # The home loop is gone, or stopped (a finished run_until_complete): a call sent
            # there would wait forever. Start again on this loop; the old link stops if its
            # loop ever runs again. What it held for its channels went with its loop.
            logger.debug("RabbitMQ layer: its home loop stopped; starting on a new one")
            link.abandon()
            self._link = None
            self._reset()
            return None
        return link.loop

    def _forward(
        self,
        home: asyncio.AbstractEventLoop,
        work: Coroutine[Any, Any, T],
        operation: str,
        target: str,
    ) -> Coroutine[Any, Any, T]:
        """Run ``work`` on the home loop (loops.py): ``LoopBlocked`` if that loop does not start
        it within ``retry_timeout`` (it is blocked, perhaps by the calling thread)."""
        patience = max(self.retry_timeout, 0.1)
        return run_at(home, work, patience=patience, operation=operation, target=target)

    def _refuse_closed(self, operation: str, target: str) -> None:
        if self._closed:
            raise LayerClosed(target, operation)

    def _open_link(self) -> Link:
        """The link, for work that may come late (a log reopened after a lost connection):
        ``LayerClosed`` once the layer is closed, rather than connect it again."""
        self._refuse_closed("history", self.prefix)
        return self._connect()

    def _connect(self) -> Link:
        link = self._link
        if link is None:
            link = self._link = Link(
                self.host,
                stats=self.stats,
                on_connect=self._on_connect,
                retry_timeout=self.retry_timeout,
                ssl_context=self.ssl_context,
                name=f"channelworks {self.queue}",
                log_lines=self.log_lines,
            )
        return link

    async def _on_connect(self, connection: AbstractConnection) -> list[AbstractChannel]:
        """Declare this process's queue and bindings, start its consumers (each connection)."""
        reader_channel = await connection.channel(publisher_confirms=False)
        await reader_channel.exchange_declare(self.groups_exchange, exchange_type="direct")
        if self._queue_made:
            try:
                await reader_channel.queue_declare(self.queue, passive=True)
            except ChannelNotFoundEntity:  # the error closed the channel
                self._queue_gone()
                reader_channel = await connection.channel(publisher_confirms=False)
        try:
            await reader_channel.queue_declare(
                self.queue,
                arguments={
                    "x-max-length": self.process_capacity,
                    "x-overflow": "reject-publish",
                    "x-expires": int(self.process_timeout * 1000),
                    "x-message-ttl": self._expiry_ms,
                },
            )
        except ChannelPreconditionFailed as exc:
            # Only a queue name chosen by hand (``_queue_name``) can meet a queue left by an
            # earlier process with other options: use it as it is (the error closed the
            # channel) rather than fail every connection attempt until it expires.
            logger.warning(
                "RabbitMQ layer uses its queue %s as an earlier process declared it, with "
                "other capacity or expiry options (%s)",
                self.queue,
                exc,
            )
            reader_channel = await connection.channel(publisher_confirms=False)
            await reader_channel.queue_declare(self.queue, passive=True)
        self._queue_made = True
        for group in sorted(self.bindings.bound):  # the queue may be new (it had expired)
            await reader_channel.queue_bind(self.queue, self.groups_exchange, routing_key=group)
        await self.reader.start(
            reader_channel,
            self.queue,
            prefetch=max(self.prefetch_count, 1000),
            on_cancelled=self._queue_deleted,
        )
        normal_channel = await connection.channel(publisher_confirms=False)
        await normal_channel.basic_qos(prefetch_count=self.prefetch_count)
        self._normal_channel = normal_channel
        self._declared.clear()
        for channel in self.normal.reconnected():
            self._background(self.normal.restart(channel), f"restart the consumer of {channel!r}")
        return [reader_channel, normal_channel]

    def _queue_gone(self) -> None:
        """This process's queue was not there when it connected again: a broker restarted
        without it, someone deleted it, or it went unread past ``process_timeout``. What was
        sent to its channels and groups since it went is lost, in a number nobody knows;
        count and log the loss (the queue and its bindings are made again next)."""
        self.stats.queue_lost += 1
        self.log_lines.event(
            logger,
            "queue lost",
            logging.ERROR,
            "RabbitMQ layer: its queue {queue} was gone when it reconnected (deleted, a broker "
            "restarted without it, or unread past process_timeout): messages sent to this "
            "process's channels and groups meanwhile were lost, how many is unknown; "
            "{count} time(s), counted in stats.queue_lost. The queue and its bindings are made "
            "again.",
            queue=self.queue,
        )

    def _queue_deleted(self, channel: AbstractChannel) -> None:
        """RabbitMQ cancelled the process reader: its queue was deleted under a live
        connection. Reconnect (the reader's channel closes), which finds the queue gone,
        counts it and makes it again, rather than read nothing from now on."""
        link = self._link
        if self._closed or link is None or link.closing:
            return  # close() deleted it
        logger.warning(
            "RabbitMQ layer: its queue %s was deleted under it; reconnecting to make it again",
            self.queue,
        )
        self._background(channel.close(), f"close the reader of deleted queue {self.queue}")

    def _ack_process(self, channel: AbstractChannel, tag: int) -> None:
        """Acknowledge the process queue's deliveries up to ``tag`` (``multiple``)."""
        link = self._link
        if link is not None:
            link.ack(channel, tag, multiple=True)

    def _background(self, work: Coroutine[Any, Any, Any], what: str) -> None:
        link = self._connect()

        async def run() -> None:
            try:
                await work
            except Exception as exc:
                logger.error("RabbitMQ layer could not %s: %r", what, exc)

        task = link.loop.create_task(run())
        link.tasks.add(task)
        task.add_done_callback(link.tasks.discard)

    async def _ready(self, operation: str, target: str) -> Link:
        link = self._connect()
        await link.wait(link.deadline(), operation, target)
        return link

    def _channel_arguments(self, channel: str) -> dict[str, Any]:
        return {
            "x-max-length": self.get_capacity(channel),
            "x-overflow": "reject-publish",
            "x-expires": int(max(2 * self.expiry, self.process_timeout) * 1000),
            "x-message-ttl": self._expiry_ms,
        }

    async def _declare(self, channel: str, operation: str) -> None:
        """Declare a normal channel's queue (once per connection)."""
        if channel in self._declared:
            return
        queue = self.names.channel(channel)
        arguments = self._channel_arguments(channel)

        async def declare(control: AbstractChannel) -> None:
            try:
                await control.queue_declare(queue, arguments=arguments)
            except ChannelPreconditionFailed as exc:
                # Declared by a process with other options: use it as it is.
                logger.warning(
                    "RabbitMQ layer uses queue %s as declared elsewhere, with other capacity or "
                    "expiry options than this process's (%s)",
                    queue,
                    exc,
                )

        await self._connect().call(operation, channel, declare)
        self._declared.add(channel)

    async def _consume_normal(
        self, channel: str, deliver: Callable[[DeliveredMessage], Coroutine[Any, Any, None]]
    ) -> tuple[AbstractChannel, str]:
        await self._declare(channel, "receive")
        queue = self.names.channel(channel)

        async def consume(_: AbstractChannel) -> tuple[AbstractChannel, str]:
            consumer = self._normal_channel
            if consumer is None or consumer.is_closed:
                raise ConnectionError("the consumer channel is closed")
            ok = await consumer.basic_consume(queue, deliver, no_ack=False)
            assert ok.consumer_tag is not None  # RabbitMQ always names the consumer
            return consumer, ok.consumer_tag

        return await self._connect().call("receive", channel, consume)

    def _owns(self, channel: str) -> bool:
        """Whether ``channel`` is one of this layer's own process-local channels."""
        return self._marker in channel or channel.startswith(self._bare)

    # -- point to point -----------------------------------------------------------------------

    async def send(self, channel: str, message: Message) -> None:
        require_channel_name(channel)
        require_message(message)
        self._refuse_closed("send", channel)
        home = self._elsewhere()
        if home is not None:
            await self._forward(home, self.send(channel, message), "send", channel)
            return
        if self.deliver_locally and self._owns(channel):
            # Our own channel: straight into the local layer, as a reader of the queue would
            # get it (a decoded copy); ChannelFull when its buffer is full.
            plain = self._plain.encode(message)
            self.require_size(len(plain), channel)
            await self.local.send(channel, self._plain.decode(plain))
            return
        payload = self.codec.encode(message)
        self.require_size(len(payload), channel)
        link = self._connect()
        now = names.now_ms()
        body = names.header(names.SEND, now, now + self._expiry_ms, channel) + payload
        if "!" in channel:
            pid = names.process_of(channel)
            outcome = await self._to_process(link, pid, body, "send", channel)
            if outcome == RETURNED:
                self._undeliverable(channel, pid)
        else:
            await self._declare(channel, "send")
            key = self.names.channel(channel)
            outcome = await self._publish(link, body, "", key, "send", channel)
            if outcome == RETURNED:  # its queue expired unused meanwhile: declare it again
                self._declared.discard(channel)
                await self._declare(channel, "send")
                outcome = await self._publish(link, body, "", key, "send", channel)
                if outcome == RETURNED:
                    self._undeliverable(channel, None)
        if outcome == NACKED:
            raise ChannelFull(channel)

    @staticmethod
    async def _publish(
        link: Link, body: bytes, exchange: str, key: str, operation: str, target: str
    ) -> int:
        # A caller cancelled while waiting for the confirm does not cancel the publish, which
        # is on its way (publish_now's future is the caller's own).
        return await link.publish_now(
            body, exchange, key, mandatory=True, operation=operation, target=target
        )

    def _to_process(
        self, link: Link, pid: str, body: bytes, operation: str, target: str
    ) -> asyncio.Future[int]:
        """Publish ``body`` to process ``pid``'s queue with every other body for that queue of
        this loop iteration, as one message (a batch, see names.py), in call order; the future
        gives the batch's outcome (``ACKED``, ``NACKED``: the queue is full, ``RETURNED``: it is
        gone). A batch holds at most ``BATCH_RECORDS`` bodies and about ``BATCH_BYTES``."""
        key = self.names.process(pid)
        outcome: asyncio.Future[int] = link.loop.create_future()
        batch = self._batches.get(key)
        if batch is None:
            if not self._batches:
                link.loop.call_soon(self._publish_batches, link)
            batch = self._batches[key] = _Batch(operation, target)
        batch.add(body, outcome)
        if len(batch.bodies) >= BATCH_RECORDS or batch.size >= BATCH_BYTES:
            del self._batches[key]
            self._publish_batch(link, key, batch)
        return outcome

    def _publish_batches(self, link: Link) -> None:
        batches, self._batches = self._batches, {}
        for key, batch in batches.items():
            self._publish_batch(link, key, batch)

    @staticmethod
    def _publish_batch(link: Link, key: str, batch: _Batch) -> None:
        bodies = batch.bodies
        body = bodies[0] if len(bodies) == 1 else names.batch(bodies)
        outcome = link.publish_now(
            body, "", key, mandatory=True, operation=batch.operation, target=batch.target
        )
        outcome.add_done_callback(batch.settle)

    def _undeliverable(self, channel: str, pid: str | None) -> None:
        """RabbitMQ returned a send: the process's queue (or the channel's) is gone."""
        self.stats.undeliverable += 1
        key = pid or channel
        if key in self._dead_logged:  # once per process: every send is counted
            return
        if len(self._dead_logged) >= 1000:
            self._dead_logged.clear()
        self._dead_logged.add(key)
        logger.warning(
            "RabbitMQ layer dropped a send to %r: RabbitMQ has no queue for it (its process "
            "closed or died); further sends to it are counted in stats.undeliverable only",
            channel,
        )

    def _taken(self, message: Message) -> Message:
        """``message``, once the messages that expired here before a receive took them are
        logged (channels_rabbitmq's "expired locally" warning), aggregated: every one is
        counted in ``stats.expired``, the log gets at most one line per interval."""
        expired = self.stats.expired
        if expired != self._expired_logged:
            self.log_lines.event(
                logger,
                "expired locally",
                logging.WARNING,
                "RabbitMQ layer: {count} message(s) expired locally, unread for longer than "
                "their expiry ({expiry} s in this process): a reader is too slow, or gone "
                "without a group_discard; counted in stats.expired",
                count=expired - self._expired_logged,
                expiry=self.local.expiry,
            )
            self._expired_logged = expired
        return message

    def receive_nowait(self, channel: str) -> Message | None:
        if isinstance(channel, str) and self._owns(channel):
            message = self.local.receive_nowait(channel)
            if message is None and self.reader.overflow:
                message = self.reader.take(channel)
            if message is not None:
                self.bindings.read(channel)
            return message
        require_channel_name(channel)
        if "!" in channel:
            raise ForeignChannel(channel)
        return None

    async def receive(self, channel: str) -> Message:
        if self._closed:
            require_channel_name(channel)
            raise LayerClosed(channel)
        if isinstance(channel, str) and self._owns(channel):
            link = self._link
            if (
                link is not None
                and link.loop is asyncio.get_running_loop()
                and channel not in self.reader.overflow
            ):
                # The common case, kept short: a consumer of this process on the home loop.
                bindings = self.bindings
                if not bindings.members:
                    return self._taken(await self.local.receive(channel))
                bindings.wait_started(channel)
                try:
                    return self._taken(await self.local.receive(channel))
                finally:
                    bindings.wait_ended(channel)
            home = self._elsewhere()
            if home is not None:
                return await self._forward(home, self.receive(channel), "receive", channel)
            self._connect()
            message = self.receive_nowait(channel)
            if message is not None:
                return self._taken(message)
            self.bindings.wait_started(channel)
            try:
                return self._taken(await self.local.receive(channel))
            finally:
                self.bindings.wait_ended(channel)
        require_channel_name(channel)
        if "!" in channel:
            raise ForeignChannel(channel)
        home = self._elsewhere()
        if home is not None:
            return await self._forward(home, self.receive(channel), "receive", channel)
        self._connect()
        return await self.normal.receive(channel)

    async def new_channel(self, prefix: str = "specific") -> str:
        """A new channel of this process; waits (up to ``retry_timeout``) for its queue."""
        if not isinstance(prefix, str) or "!" in prefix:
            raise InvalidChannelName("channel prefix", prefix, "must be a str without '!'")
        name = require_channel_name(f"{prefix}{self._marker}{next(self._counter)}")
        self._refuse_closed("new_channel", name)
        home = self._elsewhere()
        if home is None:
            with contextlib.suppress(RabbitMQUnavailable):  # logged; works once connected
                await self._ready("new_channel", name)
        return name

    # -- groups -------------------------------------------------------------------------------

    async def group_add(self, group: str, channel: str) -> None:
        require_group_name(group)
        require_channel_name(channel)
        self._refuse_closed("group_add", group)
        home = self._elsewhere()
        if home is not None:
            await self._forward(home, self.group_add(group, channel), "group_add", group)
            return
        if self._owns(channel):
            await self.local.group_add(group, channel)
            self.bindings.add(group, channel)
            await self._bind(group)  # decides under the lock: an unbind may be on its way
            self._schedule_sweep()
        elif "!" in channel:
            await self._request(names.JOIN, group, channel, "group_add")
        else:
            await self._declare(channel, "group_add")
            queue = self.names.channel(channel)
            await self._connect().call(
                "group_add",
                group,
                lambda control: control.queue_bind(queue, self.groups_exchange, routing_key=group),
            )

    async def group_discard(self, group: str, channel: str) -> None:
        require_group_name(group)
        require_channel_name(channel)
        self._refuse_closed("group_discard", group)
        home = self._elsewhere()
        if home is not None:
            await self._forward(home, self.group_discard(group, channel), "group_discard", group)
            return
        if self._owns(channel):
            await self.local.group_discard(group, channel)
            self.bindings.discard(group, channel)
            if not self.bindings.wanted(group):
                await self._unbind(group)  # decides under the lock: a bind may be on its way
        elif "!" in channel:
            await self._request(names.LEAVE, group, channel, "group_discard")
        else:
            queue = self.names.channel(channel)

            async def unbind(control: AbstractChannel) -> None:
                try:
                    await control.queue_unbind(queue, self.groups_exchange, routing_key=group)
                except ChannelClosed as exc:
                    if is_lost(exc):
                        raise
                    # no such queue: the channel was never a member

            await self._connect().call("group_discard", group, unbind)

    async def _request(self, kind: bytes, group: str, channel: str, operation: str) -> None:
        """Ask the process that owns ``channel`` to add it to ``group`` or discard it."""
        pid = names.process_of(channel)
        body = names.header(kind, names.now_ms(), 0, group, channel)
        link = self._connect()
        outcome = await self._to_process(link, pid, body, operation, channel)
        if outcome == RETURNED:
            self._undeliverable(channel, pid)
        elif outcome == NACKED:  # its process queue is full: the request was not queued
            raise ChannelFull(channel)

    def _requested(self, kind: bytes, group: str, channel: str) -> None:
        """The reader got a join or leave request from another process."""
        try:
            require_group_name(group)
            require_channel_name(channel)
        except InvalidChannelName as exc:
            logger.error("RabbitMQ layer ignored a bad membership request: %s", exc)
            return
        if not self._owns(channel):
            return
        if kind == names.JOIN:
            self._background(self.group_add(group, channel), f"add {channel!r} to {group!r}")
        else:
            self._background(
                self.group_discard(group, channel), f"discard {channel!r} from {group!r}"
            )

    def _lapsed(self, group: str) -> None:
        """The reader dropped the last lapsed member of ``group`` here: unbind it."""
        self._background(self._unbind(group), f"unbind lapsed group {group!r}")

    def _schedule_sweep(self) -> None:
        """Look for lapsed members when the first may lapse, even if no group message comes,
        so that a group whose last member here lapsed is unbound then."""
        link = self._link
        due = self.bindings.next_due()
        if self._sweeper is not None or link is None or due is None:
            return
        delay = min(max(due - time.time(), 0.0), self.group_expiry) + 0.01
        self._sweeper = link.loop.call_later(delay, self._sweep)

    def _sweep(self) -> None:
        self._sweeper = None
        link = self._link
        if link is None:
            return
        now = time.time()
        for group in self.bindings.due(now):
            lapsed = self.bindings.lapsed(group, now)
            if lapsed:
                self._background(self._drop_lapsed(group, lapsed), f"drop lapsed {group!r}")
        self._schedule_sweep()

    async def _drop_lapsed(self, group: str, channels: list[str]) -> None:
        for channel in channels:
            if not self.bindings.is_member(group, channel):  # not added again meanwhile
                await self.local.group_discard(group, channel)
        if not self.bindings.wanted(group):
            await self._unbind(group)

    def _lock(self) -> asyncio.Lock:
        if self._bind_lock is None:
            self._bind_lock = asyncio.Lock()
        return self._bind_lock

    async def _bind(self, group: str) -> None:
        async with self._lock():
            if group in self.bindings.bound or not self.bindings.wanted(group):
                return
            await self._connect().call(
                "group_add",
                group,
                lambda control: control.queue_bind(
                    self.queue, self.groups_exchange, routing_key=group
                ),
            )
            self.bindings.bound.add(group)

    async def _unbind(self, group: str) -> None:
        async with self._lock():
            if group not in self.bindings.bound or self.bindings.wanted(group):
                return
            await self._connect().call(
                "group_discard",
                group,
                lambda control: control.queue_unbind(
                    self.queue, self.groups_exchange, routing_key=group
                ),
            )
            self.bindings.bound.discard(group)

    async def group_send(
        self, group: str, message: Message, *, history: bool | None = None
    ) -> StreamPosition | None:
        """Publish ``message`` to ``group`` once; RabbitMQ copies it to each member process.

        Returns once the publish is on its way, without waiting for the broker's confirm: a
        nack (a full normal-channel member or process queue) is counted in
        ``stats.group_full`` and logged, and a connection lost before the confirm publishes it
        again (or counts it in ``stats.lost``). Raises ``RabbitMQUnavailable`` only when there
        is no connection for ``retry_timeout``.

        With history (``history=True``, or a group of the ``history`` option) the message is
        first written to the group's log (history.py: a stream queue) and its position comes
        back once the record was seen in the stream; members get it with that position,
        which is returned. Without, ``None``.
        """
        require_group_name(group)
        require_message(message)
        self._refuse_closed("group_send", group)
        home = self._elsewhere()
        if home is not None:
            return await self._forward(
                home, self.group_send(group, message, history=history), "group_send", group
            )
        if history is None and not self.history_config.patterns:
            await self._group_send(group, message)  # no history anywhere: as it always was
            return None
        options = self.history_config.for_send(group, history)
        if options is None:
            await self._group_send(group, message)
            return None
        require_unpositioned(message)
        # Measured as members get it, with the widest position: what the group send would
        # refuse must not enter the log.
        widest = with_position(message, StreamPosition(2**64 - 1, "0" * len(new_epoch())))
        self.require_size(len(self.codec.encode(widest)), group)
        await self._ready("group_send", group)
        position = await self.logs.append(group, message, options)
        self.stats.history_appends += 1
        await self._group_send(group, with_position(message, position))
        return position

    async def history(
        self, group: str, *, since: StreamPosition | None = None, limit: int = DEFAULT_LIMIT
    ) -> HistoryResult:
        """The messages of ``group``'s log after ``since`` and its position now, or
        ``Unrecoverable`` (docs/channel-layer-spec.md, "History and resume")."""
        require_group_name(group)
        require_limit(limit)
        self._refuse_closed("history", group)
        home = self._elsewhere()
        if home is not None:
            return await self._forward(
                home, self.history(group, since=since, limit=limit), "history", group
            )
        await self._ready("history", group)
        with counted_read(self.stats):  # reads and Unrecoverable counted
            return await self.logs.read(group, since, limit, self.history_config.for_read(group))

    async def _group_send(self, group: str, message: Message) -> None:
        payload = self.codec.encode(message)
        self.require_size(len(payload), group)
        link = await self._ready("group_send", group)
        now = names.now_ms()
        origin: tuple[str, ...] = ()
        if self.deliver_locally and self.bindings.wanted(group):
            # This process's members get it in memory now, as they get sends to them (order
            # per sender); the copy RabbitMQ routes back here names us and is skipped.
            copy = self._plain.decode(
                payload if not self.codec.encrypted else self._plain.encode(message)
            )
            await self.reader.to_group(group, now / 1000, copy)
            origin = (self.pid,)
        body = names.header(names.GROUP, now, now + self._expiry_ms, group, *origin) + payload
        task = link.publish_now(
            body,
            self.groups_exchange,
            group,
            mandatory=False,  # an unbound group has no members: nothing to report
            operation="group_send",
            target=group,
        )
        kind = message.get("type")
        task.add_done_callback(lambda done: self._group_sent(done, group, kind))

    def _group_sent(self, task: asyncio.Future[int], group: str, kind: object) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self.stats.lost += 1
            logger.error(
                "RabbitMQ layer: group_send to %r (message type %r) was not confirmed: %s",
                group,
                kind,
                exc,
            )
        elif task.result() == NACKED:
            self.report_group_full(group, {"type": kind}, 1)

    # -- lifecycle ----------------------------------------------------------------------------

    async def flush(self) -> None:
        """Drop this layer's messages and memberships: its process queue (through a marker
        that marks where "before the flush" ends), the normal-channel queues this process
        declared, and its group bindings. Other processes' own channels are theirs to flush.
        """
        if self._closed:
            return  # nothing is held any more
        home = self._elsewhere()
        if home is not None:
            await self._forward(home, self.flush(), "flush", self.prefix)
            return
        self.normal.flush()
        groups = self.bindings.clear()
        link = self._link
        if link is None:
            await self.reader.flushed(None)
            return
        declared = sorted(self._declared)

        async def purge(control: AbstractChannel) -> None:
            for channel in declared:
                try:
                    await control.queue_purge(self.names.channel(channel))
                except ChannelNotFoundEntity:  # expired unused: nothing to purge
                    self._declared.discard(channel)
                    control = await link.control()
            for group in groups:
                await control.queue_unbind(self.queue, self.groups_exchange, routing_key=group)

        try:
            await self.logs.flush()
            await link.call("flush", self.prefix, purge)
            self.bindings.bound.difference_update(groups)
            token = f"{self.pid}-{next(self._counter)}"
            done = self.reader.expect_flush(token)
            marker = names.header(names.FLUSH, names.now_ms(), 0, token)
            await self._to_process(link, self.pid, marker, "flush", self.prefix)
            await asyncio.wait_for(done, self.retry_timeout)
        except (RabbitMQUnavailable, TimeoutError):
            await self.reader.flushed(None)  # what is here now, at least

    async def close(self) -> None:
        """Delete this process's queue (and its memberships), close the connection.

        This process's presences leave first, their leaves sent (docs/presence.md).

        Receivers waiting on this layer's channels, normal or its own, end at once with
        ``LayerClosed`` (a ``StopConsumer``: their consumers end quietly); messages waiting in
        this process for its channels are dropped. The layer stays closed, as
        channels_rabbitmq's: every later call raises ``LayerClosed`` (``flush`` and ``close``
        do nothing). Build a new layer to connect again.
        """
        if self._closed:
            return
        await self.close_presence()  # leaves sent while the layer still works
        self._closed = True
        home = self._elsewhere()
        if home is not None:
            await self._forward(home, self._close(), "close", self.prefix)
            return
        await self._close()

    async def _close(self) -> None:
        self.normal.close()
        self.local.end_receives(LayerClosed)
        link, self._link = self._link, None
        if link is not None:

            async def delete_queue() -> None:
                await link.call("close", self.queue, lambda c: c.queue_delete(self.queue))

            await link.aclose(before=delete_queue)
        await self.local.close()
        self.log_lines.flush()
        self._reset()

    def __repr__(self) -> str:
        host = self._link.host if self._link is not None else self.host.rpartition("@")[2]
        return f"<RabbitMQChannelLayer prefix={self.prefix!r} host={host!r} pid={self.pid}>"


__all__ = ["RabbitMQChannelLayer"]
