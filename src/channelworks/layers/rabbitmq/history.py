"""Group history on RabbitMQ: one stream queue per group log (docs/rabbitmq.md "History").

Rules of this file (the contract is docs/channel-layer-spec.md, the shared logic history.py):
- a group's log is the stream queue ``{prefix}.history.log.{group}``; the offset RabbitMQ gives
  a record in the stream is its position's ``offset``. Stream offset 0 holds the log's *epoch
  record* (``e``), so messages are numbered 1, 2, 3... with no gap, and every record carries
  the epoch it was written in;
- a log is made once, by the process that wins its creation: the first token published to
  ``{prefix}.history.epoch.{group}`` (a queue of one message with ``reject-publish``) is
  kept, later ones are nacked, atomically. The winner alone declares the stream, writes the
  epoch record and then declares ``{prefix}.history.ready.{group}``; every other process
  waits for that queue before it consumes or writes, so nothing lands before the epoch
  record and no stream is declared twice at once or consumed while it is being made (either
  can close the whole connection on RabbitMQ 3.10: ``Stream not found``);
- a publisher is not told the offset of what it published (AMQP confirms carry none): every
  process that uses a log consumes its stream (from ``"last"``, or from where it was after a
  reconnect) and learns the offset of its own records by their token as they come back. The
  same consumer keeps the log's last offset (``tail``), which is where ``history()`` stops
  reading; it may lag behind another process's appends by the time they take to arrive, and
  ``history()`` then answers up to an older position, never a partial list;
- ``history()`` reads the records after ``since`` with a consumer of its own from that offset
  to the tail; RabbitMQ drops whole segments past ``x-max-age`` (the log's ``ttl``), and
  ``size`` is applied on reading: a position more than ``size`` behind the tail has left the
  log. RabbitMQ never deletes a stream by itself (its last segment stays): each process
  sweeps the logs it used every ``SWEEP`` seconds and deletes those whose newest record is
  older than their ``ttl`` (one it no longer consumes is looked at again first);
- ``flush()`` deletes the logs this process used: ready queue, epoch queue, then stream (a
  stream left by a crash in between is made again with a new epoch record).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from aiormq.abc import AbstractChannel, DeliveredMessage
from aiormq.exceptions import ChannelNotFoundEntity, ChannelPreconditionFailed

from channelworks.exceptions import LayerClosed, Unrecoverable
from channelworks.layers.codec import Codec, UndecodableMessage
from channelworks.layers.history import (
    HistoryOptions,
    HistoryResult,
    StreamPosition,
    new_epoch,
    select,
)
from channelworks.layers.rabbitmq import names
from channelworks.layers.rabbitmq.connection import ACKED, NACKED, RETURNED, Link
from channelworks.layers.rabbitmq.errors import RabbitMQUnavailable
from channelworks.layers.rabbitmq.reader import unwatch_cancel, watch_cancel
from channelworks.layers.rabbitmq.stats import RabbitMQLayerStats

logger = logging.getLogger("channelworks.layers.rabbitmq")

Message = dict[str, Any]
EPOCH, RECORD = b"e", b"h"
#: stream segment size: RabbitMQ drops whole segments past x-max-age (its default is 500 MB)
SEGMENT_BYTES = 1_000_000
#: records a log consumer may hold unacknowledged (stream consumers need a prefetch)
PREFETCH = 1000
#: bytes of recent records kept per log for resumes read in memory
RECENT_BYTES = 1 << 20
#: seconds a log goes unused in this process before its consumer is stopped
IDLE = 300.0
#: seconds between two looks for expired logs
SWEEP = 30.0


class _Log:
    """What this process knows of one group's log."""

    __slots__ = (
        "consumer",
        "cover",
        "epoch",
        "keep",
        "last_ms",
        "opening",
        "pending",
        "ready",
        "recent",
        "recent_bytes",
        "tail",
        "ttl",
        "used",
    )

    def __init__(self, keep: int, ttl: float = 300.0) -> None:
        self.epoch: str | None = None
        self.ttl = ttl
        self.last_ms = 0  # the writer's clock when the newest record seen here was written
        self.tail = 0
        self.ready = asyncio.Event()  # the consumer has seen a record: epoch and tail known
        self.consumer: str | None = None
        self.pending: dict[str, asyncio.Future[int]] = {}
        self.opening: asyncio.Future[None] | None = None
        #: the last records the consumer saw, ``(offset, payload)``, every one from ``cover``
        #: on (a resume inside them is read here, without a consumer of its own); at most
        #: ``keep`` (the log's size) and ``RECENT_BYTES``
        self.recent: deque[tuple[int, bytes]] = deque()
        self.recent_bytes = 0
        self.cover: int | None = None
        self.keep = keep
        self.used = 0.0  # time.monotonic() of its last use here

    def saw(self, offset: int, kind: bytes, payload: bytes) -> None:
        """Keep a record the consumer delivered (the epoch record starts the cover at 1)."""
        recent = self.recent
        if kind == EPOCH:
            recent.clear()
            self.recent_bytes, self.cover = 0, offset + 1
            return
        if self.cover is None or (recent and recent[-1][0] + 1 != offset):
            recent.clear()  # not contiguous with what was kept: start again here
            self.recent_bytes, self.cover = 0, offset
        elif not recent and self.cover != offset:
            self.cover = offset
        recent.append((offset, payload))
        self.recent_bytes += len(payload)
        while recent and (len(recent) > self.keep or self.recent_bytes > RECENT_BYTES):
            self.recent_bytes -= len(recent.popleft()[1])
            self.cover = recent[0][0] if recent else offset + 1

    def read_back(self, records: list[tuple[int, bytes]]) -> None:
        """Keep older records read from the stream too, if they end where ``recent`` starts
        without a hole (as many as ``keep`` and ``RECENT_BYTES`` allow, newest first)."""
        cover = self.cover
        older = [r for r in records if cover is not None and r[0] < cover]
        if not older or cover is None or older[-1][0] + 1 != cover:
            return
        for record in reversed(older):
            if record[0] + 1 != self.cover or len(self.recent) >= self.keep:
                return
            if self.recent_bytes + len(record[1]) > RECENT_BYTES:
                return
            self.recent.appendleft(record)
            self.recent_bytes += len(record[1])
            self.cover = record[0]

    def kept(self, start: int, top: int) -> list[tuple[int, bytes]] | None:
        """The payloads of offsets ``start`` to ``top`` if all are kept here, else ``None``."""
        recent = self.recent
        if self.cover is None or start < self.cover or not recent or recent[-1][0] < top:
            return None
        first = recent[0][0]
        return [recent[i] for i in range(start - first, top - first + 1)]


class Logs:
    """The group logs of one layer on its home loop; the layer calls ``append``, ``read``,
    ``flush`` and ``lost`` (its connection went)."""

    def __init__(
        self,
        *,
        names_: names.Names,
        codec: Codec,
        stats: RabbitMQLayerStats,
        link: Callable[[], Link],
        retry_timeout: float,
    ) -> None:
        self.names = names_
        self.codec = codec
        self.stats = stats
        self.link = link
        self.retry_timeout = retry_timeout
        self.logs: dict[str, _Log] = {}
        self._channel: AbstractChannel | None = None
        self._tokens = itertools.count()
        self._pid = secrets.token_hex(4)
        self._next_idle_check = time.monotonic() + IDLE / 10
        #: group -> when its log expires (wall clock): its newest record's time plus its ttl,
        #: for every log this process used, consumed here now or not
        self.expiring: dict[str, tuple[float, float]] = {}
        self._sweeper: asyncio.Task[None] | None = None

    def _stream(self, group: str) -> str:
        return f"{self.names.prefix}.history.log.{group}"

    def _epoch_queue(self, group: str) -> str:
        return f"{self.names.prefix}.history.epoch.{group}"

    def _ready_queue(self, group: str) -> str:
        return f"{self.names.prefix}.history.ready.{group}"

    # -- appending ----------------------------------------------------------------------------

    async def append(self, group: str, message: Message, options: HistoryOptions) -> StreamPosition:
        """Write ``message`` to ``group``'s log; its position once the record came back.

        A record published again after a lost connection may be stored twice (two offsets),
        as a group send republished then may be delivered twice.
        """
        log = await self._open(group, options)
        assert log.epoch is not None  # known once open
        token = f"{self._pid}-{next(self._tokens)}"
        body = names.header(RECORD, names.now_ms(), 0, log.epoch, token)
        body += self.codec.seal(message, _bound(group))
        link = self.link()
        waiter: asyncio.Future[int] = link.loop.create_future()
        log.pending[token] = waiter
        try:
            outcome = await link.publish_now(
                body,
                "",
                self._stream(group),
                mandatory=True,
                operation="group_send",
                target=group,
            )
            if outcome == RETURNED:  # the stream was deleted meanwhile (a flush elsewhere)
                self._forget(group)
                raise RabbitMQUnavailable("group_send", group, link.host, "the log was deleted")
            if outcome == NACKED:
                raise RabbitMQUnavailable("group_send", group, link.host, "the log refused it")
            try:
                offset = await asyncio.wait_for(asyncio.shield(waiter), self.retry_timeout)
            except TimeoutError:
                raise link.unavailable(
                    "group_send", group, "the record did not come back"
                ) from None
        finally:
            log.pending.pop(token, None)
        return StreamPosition(offset, log.epoch)

    # -- reading ------------------------------------------------------------------------------

    async def read(
        self, group: str, since: StreamPosition | None, limit: int, options: HistoryOptions
    ) -> HistoryResult:
        """``history(group, since=since, limit=limit)``: the shared rules (``select``) over
        what the stream holds from ``since`` to the tail this process knows."""
        log = await self._open(group, options)
        epoch, top = log.epoch, log.tail
        assert epoch is not None
        floor = max(1, top - options.size + 1)  # ``size`` is applied on reading
        if since is None:
            start = max(floor, top - limit + 1)
        elif since.epoch != epoch or since.offset >= top or top - since.offset > limit:
            start = top + 1  # select() answers from the positions alone: nothing to read
        else:
            start = max(since.offset + 1, floor)
        entries: list[tuple[int, Message]] = []
        if start <= top and limit:
            kept = log.kept(start, top)
            if kept is None:  # not all seen by the consumer: read them from the stream
                kept = await self._records(group, epoch, start, top)
                log.read_back(kept)
            position = StreamPosition(top, epoch)
            entries = [(o, self._decoded(group, position, p)) for o, p in kept]
        # the first offset the log holds: what RabbitMQ still has, and no more than ``size``
        oldest = entries[0][0] if entries else (floor if top else None)
        return select(group, entries, epoch=epoch, top=top, oldest=oldest, since=since, limit=limit)

    async def _records(
        self, group: str, epoch: str, start: int, top: int
    ) -> list[tuple[int, bytes]]:
        """The payloads of offsets ``start`` to ``top`` (fewer from the front if RabbitMQ
        dropped them), read by a consumer of their own."""
        link = self.link()
        channel = await self._logs_channel(link)
        found: list[tuple[int, bytes]] = []
        done: asyncio.Future[None] = link.loop.create_future()
        position = StreamPosition(top, epoch)

        async def deliver(delivery: DeliveredMessage) -> None:
            offset = _offset(delivery)
            tag = getattr(delivery.delivery, "delivery_tag", None)
            if tag is not None:
                link.ack(channel, tag, multiple=False)
            if done.done() or offset is None or offset > top:
                if not done.done():
                    done.set_result(None)
                return
            try:
                kind, _, _, targets, payload = names.split(delivery.body)
                if kind != RECORD or targets[0] != epoch:
                    raise ValueError("a record of another epoch")
                found.append((offset, payload))
            except (ValueError, IndexError, UnicodeDecodeError) as exc:
                done.set_exception(
                    Unrecoverable(group, None, position, f"a record of the log is unusable ({exc})")
                )
                return
            if offset >= top:
                done.set_result(None)

        ok = await channel.basic_consume(
            self._stream(group), deliver, no_ack=False, arguments={"x-stream-offset": start}
        )
        try:
            await asyncio.wait_for(asyncio.shield(done), self.retry_timeout)
        except TimeoutError:
            raise link.unavailable("history", group, "the log did not answer") from None
        finally:
            if ok.consumer_tag is not None and not channel.is_closed:
                with contextlib.suppress(Exception):
                    await channel.basic_cancel(ok.consumer_tag)
        return found

    def _decoded(self, group: str, position: StreamPosition, payload: bytes) -> Message:
        try:
            return self.codec.unseal(payload, _bound(group))
        except UndecodableMessage as exc:
            self.stats.undecodable += 1
            raise Unrecoverable(
                group, None, position, f"a record of the log cannot be decoded ({exc})"
            ) from exc

    # -- opening ------------------------------------------------------------------------------

    async def _open(self, group: str, options: HistoryOptions) -> _Log:
        """The log of ``group``, made if it has none, with its consumer running (one opening
        per log at a time: concurrent callers wait for it)."""
        now = time.monotonic()
        if now >= self._next_idle_check:
            self._drop_idle(now)
        if self._sweeper is None:
            self._sweeper = asyncio.ensure_future(self._sweep_forever())
        log = self.logs.get(group)
        if log is not None and log.consumer is not None and log.ready.is_set():
            log.used = now
            return log
        if log is None:
            log = self.logs[group] = _Log(options.size, options.ttl)
        if log.opening is None or log.opening.done():
            log.opening = asyncio.ensure_future(self._start(group, log, options))
        await asyncio.shield(log.opening)
        log.used = now
        return log

    def _drop_idle(self, now: float) -> None:
        """Stop consuming the logs unused for ``IDLE`` seconds (their consumer, their kept
        records): a process holds a consumer only for the logs it uses."""
        self._next_idle_check = now + IDLE / 10
        channel = self._channel
        for group, log in list(self.logs.items()):
            if now - log.used > IDLE and not log.pending and log.consumer is not None:
                del self.logs[group]
                if channel is not None:
                    task = asyncio.ensure_future(self._stop(channel, log))
                    task.add_done_callback(_retrieve)

    async def _start(
        self, group: str, log: _Log, options: HistoryOptions, *, again: bool = False
    ) -> None:
        """Make the log if it has none (``_create``), then consume it: from its first record
        if it is new here, from where this process was after a reconnect, else from the
        last chunk. ``again``: a second try after a creation that never finished."""
        link = self.link()
        ready = self._ready_queue(group)
        made = not again and await link.call("history", group, lambda c: _exists(link, c, ready))
        if not made:
            await self._create(link, group, options, again=again)
            start: int | str = "first"
        elif log.epoch is not None:
            start = log.tail + 1  # after a reconnect: what came meanwhile, own records too
        else:
            start = "last"
        channel = await self._logs_channel(link)
        if log.consumer is None:
            log.ready.clear()
            try:
                ok = await channel.basic_consume(
                    self._stream(group),
                    functools.partial(self._deliver, group, log),
                    no_ack=False,
                    arguments={"x-stream-offset": start},
                )
            except ChannelNotFoundEntity:  # the stream was deleted, its other queues left
                if again:
                    raise
                await self._unmake(link, group, stream=False)
                await self._start(group, log, options, again=True)
                return
            log.consumer = ok.consumer_tag
            if ok.consumer_tag is not None:
                watch_cancel(channel, ok.consumer_tag, lambda _: self._forget(group))
        if not log.ready.is_set() and log.epoch is not None and start != "last":
            log.ready.set()  # known from before the reconnect: nothing to wait for
        try:
            await asyncio.wait_for(log.ready.wait(), self.retry_timeout)
        except TimeoutError:
            self._forget(group)
            raise link.unavailable("history", group, "the log has no epoch record") from None

    async def _create(
        self, link: Link, group: str, options: HistoryOptions, *, again: bool
    ) -> None:
        """Make the log, once among all processes: the one whose epoch token the arbiter
        keeps declares the stream, writes the epoch record (its confirm: the stream is up and
        holds it) and then declares the *ready* queue; the others wait for that queue, so
        that no process declares or consumes a stream that is still being made (concurrent
        declarations of one new stream, or a consumer right after another connection made
        it, can close the whole connection: RabbitMQ 3.10's ``Stream not found``)."""
        arbiter, ready = self._epoch_queue(group), self._ready_queue(group)
        epoch = new_epoch()
        await link.call(
            "history",
            group,
            lambda c: c.queue_declare(
                arbiter, durable=True, arguments={"x-max-length": 1, "x-overflow": "reject-publish"}
            ),
        )
        won = await link.publish_now(
            epoch.encode(), "", arbiter, mandatory=True, operation="history", target=group
        )
        if won == ACKED:
            await self._make_stream(link, group, epoch, options)
            await link.call("history", group, lambda c: c.queue_declare(ready, durable=True))
            return
        deadline = link.loop.time() + self.retry_timeout
        while link.loop.time() < deadline:
            await asyncio.sleep(0.02)
            if await link.call("history", group, lambda c: _exists(link, c, ready)):
                return
        if again:
            raise link.unavailable("history", group, "the log was never made")
        # The arbiter kept a token but the log was never made: its maker died in between, or
        # the stream was deleted with the arbiter left. Start the arbitration again, once.
        await self._unmake(link, group, stream=False)
        await self._create(link, group, options, again=True)

    async def _make_stream(
        self, link: Link, group: str, epoch: str, options: HistoryOptions
    ) -> None:
        stream = self._stream(group)

        async def declare(control: AbstractChannel) -> None:
            try:
                await control.queue_declare(
                    stream,
                    durable=True,
                    arguments={
                        "x-queue-type": "stream",
                        "x-max-age": f"{max(1, int(options.ttl))}s",
                        "x-stream-max-segment-size-bytes": SEGMENT_BYTES,
                    },
                )
            except ChannelPreconditionFailed as exc:  # left with other options
                logger.warning("RabbitMQ layer uses the log %s as it is (%s)", stream, exc)
                await link.control()

        await link.call("history", group, declare)
        record = names.header(EPOCH, names.now_ms(), 0, epoch)
        outcome = await link.publish_now(
            record, "", stream, mandatory=True, operation="history", target=group
        )
        if outcome != ACKED:
            raise link.unavailable("history", group, "the log refused its epoch record")

    async def _unmake(self, link: Link, group: str, *, stream: bool = True) -> None:
        """Delete the log's queues: the ready queue first (nobody starts on it any more),
        then the arbiter, then the stream. A stream left by a crash between keeps its epoch."""
        queues = [self._ready_queue(group), self._epoch_queue(group)]
        if stream:
            queues.append(self._stream(group))

        async def delete(control: AbstractChannel) -> None:
            for queue in queues:
                await control.queue_delete(queue)

        await link.call("history", group, delete)

    async def _stop(self, channel: AbstractChannel, log: _Log) -> None:
        """Cancel ``log``'s consumer (not a broker cancel: not reported as one)."""
        tag, log.consumer = log.consumer, None
        if tag is not None and not channel.is_closed:
            unwatch_cancel(channel, tag)
            with contextlib.suppress(Exception):
                await channel.basic_cancel(tag)

    async def _logs_channel(self, link: Link) -> AbstractChannel:
        """The channel of this connection the log consumers run on."""
        channel = self._channel
        if channel is None or channel.is_closed:
            assert link.connection is not None  # the caller waited for the connection
            channel = self._channel = await link.connection.channel(publisher_confirms=False)
            await channel.basic_qos(prefetch_count=PREFETCH)
            channel.closing.add_done_callback(lambda _: self.lost())
        return channel

    async def _deliver(self, group: str, log: _Log, delivery: DeliveredMessage) -> None:
        """A record of a log this process uses: its epoch, the tail, and the offset of one of
        this process's own appends (by its token)."""
        offset = _offset(delivery)
        tag = getattr(delivery.delivery, "delivery_tag", None)
        if tag is not None:  # one at a time: deliveries are handled as tasks of their own
            with contextlib.suppress(LayerClosed):  # closing: the channel goes with it
                self.link().ack(delivery.channel, tag, multiple=False)
        if offset is None:
            return
        try:
            kind, sent, _, targets, payload = names.split(delivery.body)
        except (ValueError, UnicodeDecodeError):
            return
        if kind not in (EPOCH, RECORD) or not targets:
            return
        if log.epoch is None:
            log.epoch = targets[0]
        log.tail = max(log.tail, offset)
        log.last_ms = max(log.last_ms, sent)
        self.expiring[group] = (log.last_ms / 1000 + log.ttl, log.ttl)
        if targets[0] == log.epoch:
            log.saw(offset, kind, payload)
        if kind == RECORD and len(targets) > 1:
            waiter = log.pending.pop(targets[1], None)
            if waiter is not None and not waiter.done():
                waiter.set_result(offset)
        log.ready.set()

    # -- losing -------------------------------------------------------------------------------

    def _forget(self, group: str) -> None:
        """The log was deleted (its consumer cancelled, or a publish returned): it is gone."""
        log = self.logs.pop(group, None)
        if log is not None:
            for waiter in log.pending.values():
                if not waiter.done():
                    waiter.set_exception(
                        RabbitMQUnavailable("group_send", group, "RabbitMQ", "the log was deleted")
                    )

    def lost(self) -> None:
        """The consumers' channel closed (a lost connection): each log is consumed again, from
        where it was, at its next use; appends waiting for their record reopen it now."""
        self._channel = None
        for group, log in list(self.logs.items()):
            log.consumer = None
            if log.pending:
                options = HistoryOptions()
                task = asyncio.ensure_future(self._reopen(group, options))
                task.add_done_callback(_retrieve)

    async def _reopen(self, group: str, options: HistoryOptions) -> None:
        link = self.link()
        await link.wait(link.deadline(), "history", group)
        await self._open(group, options)

    async def flush(self) -> None:
        """Delete the logs this process used (``_unmake``)."""
        groups = sorted(set(self.logs) | set(self.expiring))
        self.logs, self.expiring = {}, {}
        if not groups:
            return
        link = self.link()
        for group in groups:
            await self._unmake(link, group)

    # -- expiring -----------------------------------------------------------------------------

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP)
            try:
                await self.sweep()
            except Exception as exc:  # the next sweep tries again
                logger.debug("RabbitMQ layer: sweeping the history logs failed: %r", exc)

    async def sweep(self) -> None:
        """Delete the logs whose newest record is older than their ``ttl`` (RabbitMQ never
        deletes a stream by itself). A log this process no longer consumes is looked at again
        (its last chunk) before it goes; one another process wrote to meanwhile stays. Runs
        every ``SWEEP`` seconds; call it directly in tests."""
        wall = time.time()
        for group, (expires, ttl) in list(self.expiring.items()):
            if expires > wall:
                continue
            log = self.logs.get(group)
            if log is None or log.consumer is None:  # not seen here lately: look again
                link = self.link()
                ready = self._ready_queue(group)
                found = functools.partial(_exists, link, queue=ready)
                if not await link.call("history", group, found):
                    self.expiring.pop(group, None)  # gone already
                    continue
                log = await self._open(group, HistoryOptions(ttl=ttl))
                await asyncio.sleep(0.05)  # the last chunk's other records, if any
            if log.pending or self.expiring.get(group, (0.0, ttl))[0] > time.time():
                continue  # written to meanwhile
            self.logs.pop(group, None)
            self.expiring.pop(group, None)
            await self._unmake(self.link(), group)

    def close(self) -> None:
        """Stop sweeping (the layer closes)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None


async def _exists(link: Link, control: AbstractChannel, queue: str) -> bool:
    """Whether ``queue`` exists (a passive declare; the 404 closes the control channel,
    opened again here)."""
    try:
        await control.queue_declare(queue, passive=True)
    except ChannelNotFoundEntity:
        await link.control()  # the error closed the control channel: open the next one
        return False
    return True


def _offset(delivery: DeliveredMessage) -> int | None:
    headers = delivery.header.properties.headers or {}
    offset = headers.get("x-stream-offset")
    return offset if isinstance(offset, int) else None


def _bound(group: str) -> bytes:
    """What an encrypted record authenticates: that it belongs to ``group``'s log."""
    return b"history " + group.encode()


def _retrieve(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.debug("RabbitMQ layer: reopening a log failed: %r", task.exception())


__all__ = ["Logs"]
