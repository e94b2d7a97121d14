"""The inbox reader: one task per layer moves its process inbox into the local layer.

Rules of this file:
- one ``BLMPOP`` takes up to ``batch`` entries per round trip; the count decrements owed for
  the previous batch go in the same write, ahead of it (``DECREMENT``, one call for all);
- an entry is delivered into ``local``, an ``InMemoryChannelLayer`` that then does for this
  process what it does for any: hands messages to waiting receivers, queues them, expires
  them, survives cancelled receives;
- a *send* (``s``) whose channel is full in ``local`` is not dropped: it waits in ``overflow``
  (in order, behind earlier ones) and keeps counting against the channel's capacity in Redis
  until it moves on, so senders get ``ChannelFull`` once Redis and the process together hold
  twice ``capacity``. The layer's ``receive`` serves ``overflow`` once ``local`` is empty;
- a *group send* (``g``) to a full channel skips that channel, and the skip is counted and
  logged here, on the receiving side, through ``report_group_full``;
- an expired entry is counted in ``stats.expired``; one that does not decode in
  ``stats.undecodable`` and logged at ERROR; a lost connection is retried with backoff and
  jitter (capped at ``max_backoff``), logged at WARNING when lost and when back, and counted
  in ``stats.reconnects``. Receivers simply wait meanwhile;
- delivery of a batch never awaits anything that suspends, so a batch lands as a whole
  before any receiver runs, and a flush marker (``f``) lands exactly between what was sent
  before the flush and what was sent after.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from redis.exceptions import NoScriptError

from channelworks.exceptions import ChannelFull, ChannelLayerError
from channelworks.layers.codec import Codec, UndecodableMessage
from channelworks.layers.memory import InMemoryChannelLayer
from channelworks.layers.redis import scripts
from channelworks.layers.redis.pipeline import RETRYABLE, Pipeline, backoff
from channelworks.layers.redis.pop import Popper
from channelworks.layers.redis.stats import RedisLayerStats

logger = logging.getLogger("channelworks.layers.redis")

Message = dict[str, Any]
ReportFull = Callable[[str, Mapping[str, Any], int], None]


class InboxReader:
    """Reads the inbox of process ``pid`` into ``local``; ``run()`` is its task."""

    def __init__(
        self,
        *,
        pid: str,
        inbox: str,
        count_key: str,
        control: Pipeline,
        local: InMemoryChannelLayer,
        codec: Codec,
        stats: RedisLayerStats,
        report_group_full: ReportFull,
        tasks: set[asyncio.Task[Any]],
        pushed_seq: Callable[[], int],
        on_reconnect: Callable[[], None],
        announce: tuple[Any, ...] | None = None,
        batch: int = 512,
        max_backoff: float = 2.0,
    ) -> None:
        self.pid = pid
        self.inbox = inbox
        self.count_key = count_key
        self.control = control
        self.local = local
        self.codec = codec
        self.stats = stats
        self.report_group_full = report_group_full
        self.tasks = tasks
        self.popper = Popper(control, tasks)
        self.pushed_seq = pushed_seq
        self.on_reconnect = on_reconnect
        self.announce = announce
        self.batch = batch
        self.max_backoff = max_backoff
        #: per channel, sends that found ``local`` full: (expires_ms, message), oldest first
        self.overflow: dict[str, deque[tuple[int, Message]]] = {}
        #: per channel, entries taken that Redis still counts against its capacity
        self.decrements: dict[str, int] = {}
        #: highest sequence number of this layer's own entries read back from the inbox
        self.read_seq = 0
        self._flushes: dict[int, asyncio.Future[None]] = {}

    # -- the task -----------------------------------------------------------------------------

    async def run(self) -> None:
        failures = 0
        announce = self.announce is not None
        while True:
            owed, self.decrements = self.decrements, {}
            prelude = [_decrement(self.count_key, owed)] if owed else []
            if announce and self.announce is not None:
                # After a reconnect (Redis may have restarted empty), say "alive" before
                # delivering anything: whoever hears from us can reach us by group.
                prelude.append(self.announce)
            pushed = self.pushed_seq()
            try:
                replies, entries = await self.popper.pop(
                    self.inbox, self.batch, self._restore, prelude
                )
            except BaseException as exc:
                self._owe(owed)
                if not isinstance(exc, Exception):
                    raise  # cancelled: the layer is closing
                if not isinstance(exc, RETRYABLE):
                    logger.exception("Redis layer inbox reader failed; retrying")
                elif failures == 0:
                    logger.warning("Redis layer lost its inbox connection, reconnecting: %s", exc)
                failures += 1
                announce = True
                await asyncio.sleep(backoff(failures - 1, base=0.1, cap=self.max_backoff))
                continue
            announce = False
            if failures:
                failures = 0
                self.stats.reconnects += 1
                logger.warning("Redis layer inbox connection is back")
                self.on_reconnect()
            if owed and isinstance(replies[0], Exception):
                self._owe(owed)
                await self._reload_scripts(replies[0])
            if entries:
                await self.deliver(entries)
            elif pushed > self.read_seq:
                # The inbox was empty after everything this layer had pushed by then: those
                # entries were read, or lost with Redis' data.
                self.read_seq = pushed

    async def _reload_scripts(self, error: Exception) -> None:
        if isinstance(error, NoScriptError):  # Redis restarted: nobody has loaded them yet
            try:
                await self.control.shard.load_scripts([s.source for s in scripts.ALL])
            except Exception as exc:
                logger.warning("Redis layer could not load its scripts: %s", exc)
        else:
            logger.error("Redis layer could not update channel counts: %s", error)

    async def _restore(self, entries: list[bytes]) -> None:
        # Entries popped as the layer closed: back to the inbox head, for the record (the
        # channels they were for close with this process).
        try:
            await self.control.run([("LPUSH", self.inbox, *reversed(entries))])
        except Exception:
            self.stats.lost += len(entries)
            logger.error(
                "Redis layer closing: %d inbox entries could not be put back", len(entries)
            )

    def _owe(self, owed: dict[str, int]) -> None:
        for channel, count in owed.items():
            self.decrements[channel] = self.decrements.get(channel, 0) + count

    def _taken(self, channel: str) -> None:
        self.decrements[channel] = self.decrements.get(channel, 0) + 1

    # -- delivery (nothing below suspends) ----------------------------------------------------

    async def deliver(self, entries: list[bytes]) -> None:
        """Deliver inbox ``entries`` into ``local``, in order."""
        now = int(time.time() * 1000)
        for entry in entries:
            head, _, payload = entry.partition(b"\n")
            try:
                kind, expires_text, origin, *names = head.decode("ascii").split(" ")
                expires = int(expires_text)
            except ValueError:
                self._undecodable(f"a malformed inbox entry {head[:80]!r}", None)
                continue
            sender, _, seq = origin.partition(":")
            if sender == self.pid and seq.isdigit():
                self.read_seq = max(self.read_seq, int(seq))
            if kind == "s" and len(names) == 1:
                await self._send(names[0], expires, payload, now)
            elif kind == "g" and names:
                await self._group_send(names[0], names[1:], expires, payload, now)
            elif kind == "f":
                await self.flushed(int(seq) if seq.isdigit() else 0)
            else:
                self._undecodable(f"an inbox entry of unknown kind {head[:80]!r}", None)

    async def _send(self, channel: str, expires: int, payload: bytes, now: int) -> None:
        if expires <= now:
            self.stats.expired += 1
            self._taken(channel)
            return
        try:
            message = self.codec.decode(payload)
        except UndecodableMessage as exc:
            self._undecodable(f"a message for channel {channel!r}", exc)
            self._taken(channel)
            return
        queue = self.overflow.get(channel)
        if queue is not None:
            await self._refill(channel, queue, now)
            if channel in self.overflow:
                queue.append((expires, message))
                return
        try:
            await self.local.send(channel, message)
        except ChannelFull:
            self.overflow[channel] = deque([(expires, message)])
            return
        except ChannelLayerError as exc:  # a bad name or type in an entry we did not write
            self._undecodable(f"a message for channel {channel!r}", exc)
        self._taken(channel)

    async def _group_send(
        self, group: str, channels: list[str], expires: int, payload: bytes, now: int
    ) -> None:
        if expires <= now:
            self.stats.expired += len(channels)
            return
        try:
            message = self.codec.decode(payload)
        except UndecodableMessage as exc:
            self._undecodable(f"a group_send to {group!r}", exc)
            return
        skipped = 0
        for channel in channels:
            queue = self.overflow.get(channel)
            if queue is not None:
                await self._refill(channel, queue, now)
                if channel in self.overflow:
                    skipped += 1
                    continue
            try:
                await self.local.send(channel, message)
            except ChannelFull:
                skipped += 1
            except ChannelLayerError as exc:
                self._undecodable(f"a group_send to {group!r}", exc)
                return
        if skipped:
            self.report_group_full(group, message, skipped)

    async def _refill(self, channel: str, queue: deque[tuple[int, Message]], now: int) -> None:
        """Move overflowed messages of ``channel`` into ``local`` while it has room."""
        while queue:
            expires, message = queue[0]
            if expires > now:
                try:
                    await self.local.send(channel, message)
                except ChannelFull:
                    return
            else:
                self.stats.expired += 1
            queue.popleft()
            self._taken(channel)
        del self.overflow[channel]

    def take(self, channel: str) -> Message | None:
        """The next overflowed message of ``channel`` (its ``local`` queue is empty), or None."""
        queue = self.overflow.get(channel)
        if queue is None:
            return None
        now = int(time.time() * 1000)
        message = None
        while queue and message is None:
            expires, candidate = queue.popleft()
            self._taken(channel)
            if expires > now:
                message = candidate
            else:
                self.stats.expired += 1
        if not queue:
            del self.overflow[channel]
        return message

    def sweep(self) -> None:
        """Drop expired overflowed messages (of channels nobody reads any more)."""
        now = int(time.time() * 1000)
        for channel, queue in list(self.overflow.items()):
            while queue and queue[0][0] <= now:
                queue.popleft()
                self.stats.expired += 1
                self._taken(channel)
            if not queue:
                del self.overflow[channel]

    # -- flush --------------------------------------------------------------------------------

    def expect_flush(self, seq: int) -> asyncio.Future[None]:
        """A future that is done once the flush marker with ``seq`` has been read."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._flushes[seq] = future
        return future

    async def flushed(self, seq: int) -> None:
        """The flush marker ``seq`` was read: drop everything read before it."""
        self.overflow.clear()
        self.decrements.clear()
        await self.local.flush()
        for pending in [s for s in self._flushes if s <= seq]:
            future = self._flushes.pop(pending)
            if not future.done():
                future.set_result(None)

    def _undecodable(self, what: str, exc: Exception | None) -> None:
        self.stats.undecodable += 1
        logger.error("Redis layer dropped %s that could not be decoded: %s", what, exc)


def _decrement(count_key: str, owed: dict[str, int]) -> tuple[Any, ...]:
    pairs: list[str | int] = []
    for channel, count in owed.items():
        pairs += (channel, count)
    return scripts.DECREMENT.command((count_key,), *pairs)


__all__ = ["InboxReader"]
