"""The inbox reader: one task per layer moves its process inbox into the local layer.

Rules of this file:
- the reader never removes an entry it has not got: each round trip reads up to ``batch``
  entries from the head of the inbox, where they stay (a ``BLMOVE`` of the inbox onto itself
  to wait for the first, then ``TAKE``); the next round trip acknowledges the batch (``ACK``,
  in the same write, ahead of the next read), trimming it, once it is in ``local``. A reply
  lost with a connection leaves its batch at the head, and the next ``TAKE`` hands it out
  again; an ``ACK`` trims only if its batch is still the one handed out last (the batch
  number the previous ``ACK`` set) and still at the head (its last entry's header is where
  it was), so one sent again does nothing (scripts.py). A round whose ``ACK`` failed hands
  nothing out (the ``ACK`` goes again first). So a dropped connection loses nothing and
  delivers nothing twice, and neither does a read cancelled half way (``Popper.read``);
- the count decrements owed for taken entries ride on the same ``ACK`` with an id that only
  grows: Redis applies each set once, however often a failing write carries it;
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
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from redis.exceptions import NoScriptError, ResponseError

from channelworks.exceptions import ChannelFull, ChannelLayerError
from channelworks.layers.codec import Codec, UndecodableMessage
from channelworks.layers.memory import InMemoryChannelLayer
from channelworks.layers.redis import scripts
from channelworks.layers.redis.keys import bound_to, bound_to_group
from channelworks.layers.redis.pipeline import RETRYABLE, Pipeline, backoff
from channelworks.layers.redis.pop import Popper
from channelworks.layers.redis.shard import BLOCK_SECONDS, Command
from channelworks.layers.redis.stats import RedisLayerStats
from channelworks.logs import AggregatedLog

logger = logging.getLogger("channelworks.layers.redis")

Message = dict[str, Any]
ReportFull = Callable[[str, Mapping[str, Any], int], None]


class OwnPushes:
    """The entries this layer pushed to its own inbox that its reader has not read yet.

    Sends to the layer's own channels are delivered in memory only while ``unread`` is empty
    (order per sender). Tracked by sequence number, not by the highest one read: pushes made
    over different connections can land in the inbox out of sequence order.
    """

    #: how many read entries whose push has not reported back yet are remembered (more means
    #: pushes whose reply never came: forgetting one is safe, see ``read``)
    EARLY_LIMIT = 4096

    def __init__(self) -> None:
        #: sequence numbers of entries Redis accepted into the inbox and the reader has not read
        self.unread: set[int] = set()
        #: entries read before the reply to their push came in (they land, then the reply
        #: travels back): their ``accepted`` must not add them
        self._early: set[int] = set()

    def accepted(self, seq: int) -> None:
        """Redis accepted entry ``seq`` into the inbox."""
        if seq in self._early:
            self._early.discard(seq)
        else:
            self.unread.add(seq)

    def read(self, seq: int) -> None:
        """The reader read entry ``seq`` (and delivered or dropped it)."""
        if seq in self.unread:
            self.unread.discard(seq)
        else:
            if len(self._early) >= self.EARLY_LIMIT:
                # Forgotten, a late ``accepted`` would leave an entry in ``unread`` that is
                # not there: own sends go through the inbox until the reader finds it empty.
                self._early.clear()
            self._early.add(seq)

    def gone(self, seqs: set[int]) -> None:
        """Entries ``seqs``, accepted earlier, are no longer in the inbox: read, or lost (an
        empty inbox, a flush, Redis' data lost)."""
        self.unread -= seqs


class InboxReader:
    """Reads the inbox of process ``pid`` into ``local``; ``run()`` is its task."""

    def __init__(
        self,
        *,
        pid: str,
        inbox: str,
        count_key: str,
        ttl_ms: int,
        control: Pipeline,
        local: InMemoryChannelLayer,
        codec: Codec,
        stats: RedisLayerStats,
        report_group_full: ReportFull,
        log_lines: AggregatedLog,
        tasks: set[asyncio.Task[Any]],
        own: OwnPushes,
        on_reconnect: Callable[[], None],
        announce: tuple[Any, ...] | None = None,
        epoch: Callable[[], Command] | None = None,
        on_epoch: Callable[[Any], object] | None = None,
        epoch_every: float = 0.5,
        token_ttl: int | None = None,
        batch: int = 512,
        max_backoff: float = 2.0,
    ) -> None:
        self.pid = pid
        self.inbox = inbox
        self.count_key = count_key
        self.ttl_ms = ttl_ms
        self.control = control
        self.local = local
        self.codec = codec
        self.stats = stats
        self.report_group_full = report_group_full
        self.log_lines = log_lines
        self.tasks = tasks
        self.popper = Popper(control, tasks)
        self.own = own
        self.on_reconnect = on_reconnect
        self.announce = announce
        #: the EPOCH call (single server) and who hears its reply: a round trip looks at the
        #: epoch at least every ``epoch_every`` seconds, and first thing after reconnecting,
        #: so this process notices within about a second that Redis lost its data
        self.epoch = epoch
        self.on_epoch = on_epoch
        self.epoch_every = epoch_every
        self._epoch_due = 0.0
        self.token_ttl = token_ttl
        self.batch = batch
        self.max_backoff = max_backoff
        self.encrypted = codec.encrypted
        self._own_origin = f"{pid}:".encode()  # how this process's own entries start their origin
        #: per channel, sends that found ``local`` full: (expires_ms, message), oldest first
        self.overflow: dict[str, deque[tuple[int, Message]]] = {}
        #: per channel, entries taken that Redis still counts against its capacity
        self.decrements: dict[str, int] = {}
        #: the number the batch this reader hands out next gets (the ACK tags it)
        self._batch = 1
        #: the batch delivered and not yet acknowledged: (number, entries, header of its last)
        self._unacked: tuple[int, int, bytes] | None = None
        self._refusing = False  # error replies logged: not again until a clean round
        self._decrement_ids = itertools.count(1)
        self._unconfirmed: tuple[int, dict[str, int]] | None = None  # decrements sent, no reply
        self._flushes: dict[int, asyncio.Future[None]] = {}

    def attach(self, control: Pipeline, tasks: set[asyncio.Task[Any]]) -> None:
        """Read through ``control`` from now on (a new home loop's): what was read, owed and
        acknowledged so far carries over, so nothing is delivered twice or given back twice."""
        self.control = control
        self.tasks = tasks
        self.popper = Popper(control, tasks)
        self._flushes.clear()  # futures of the loop that ended: nobody awaits them any more

    # -- the task -----------------------------------------------------------------------------

    async def run(self) -> None:
        failures = 0
        fresh = True  # the first read after (re)connecting does not block: see below
        loop = asyncio.get_running_loop()
        while True:
            commands: list[Command] = []
            if fresh and self.announce is not None:
                # After a reconnect (Redis may have restarted empty), say "alive" before
                # delivering anything: whoever hears from us can reach us by group.
                commands.append(self.announce)
            acked_at = len(commands)  # where the ACK's reply will be
            commands.append(self._ack())
            if not fresh:
                # Not right after a reconnect, where a batch whose reply was lost is still
                # at the head and must come at once, not after the blocking wait.
                commands += scripts.wait_commands(self.inbox, BLOCK_SECONDS)
            looked: int | None = None  # where the EPOCH reply will be
            started = loop.time()
            if self.epoch is not None and (fresh or started >= self._epoch_due):
                # After the wait: an idle reader looks at the end of each second it waits.
                looked = len(commands)
                commands.append(self.epoch())
            commands += scripts.take_commands(self.inbox, self.batch)
            # accepted before this round trip: in the inbox by the time it runs
            pushed = set(self.own.unread) if self.own.unread else None
            try:
                replies = await self.popper.read(commands)
            except Exception as exc:
                if not loop.is_running():
                    # The loop ended without cancelling this task and the garbage collector
                    # is closing the coroutine: there is nothing to retry on.
                    raise
                if not isinstance(exc, RETRYABLE):
                    logger.exception("Redis layer inbox reader failed; retrying")
                elif failures == 0:
                    logger.warning("Redis layer lost its inbox connection, reconnecting: %s", exc)
                failures += 1
                fresh = True
                await asyncio.sleep(backoff(failures - 1, base=0.1, cap=self.max_backoff))
                continue
            if failures:
                failures = 0
                self.stats.reconnects += 1
                logger.warning("Redis layer inbox connection is back")
                self.on_reconnect()
            if looked is not None and not isinstance(replies[looked], Exception):
                self._epoch_due = started + self.epoch_every
                if self.on_epoch is not None:
                    self.on_epoch(replies[looked])
            acked = not isinstance(replies[acked_at], ResponseError)
            if acked:
                self._unacked = self._unconfirmed = None
            entries = replies[-1]
            if not acked or isinstance(entries, ResponseError):
                # Nothing is handed out from a round whose ACK failed: it may or may not have
                # trimmed the batch delivered last (it may have run before a lost reply), so
                # what the head holds is unknown. The ACK goes again, then a read.
                pass
            elif entries:
                head, newline, _ = entries[-1].partition(b"\n")
                self._unacked = (self._batch, len(entries), head + newline)
                self._batch += 1  # the number the next batch gets
                await self.deliver(entries)
            elif pushed:
                # The inbox was empty after everything this layer had pushed by then: those
                # entries were read, or lost (with Redis' data, or expired).
                self.own.gone(pushed)
            # The announce and the wait are writes, which Redis refuses when it is over
            # ``maxmemory``: what was read is delivered all the same (the ACK runs then, so
            # readers drain a full Redis), the announce goes again, and the wait is a poll.
            errors = [reply for reply in replies if isinstance(reply, ResponseError)]
            fresh = bool(errors)
            if errors:  # e.g. NOSCRIPT: what failed goes again
                read = acked and isinstance(entries, list) and bool(entries)
                await self._refused(errors, idle=not read)
            elif self._refusing:
                self._refusing = False
                logger.warning("Redis layer inbox reader gets clean replies again")

    def _ack(self) -> Command:
        """The round trip's ACK: the batch delivered last (if any), the number of the batch
        this round trip hands out, the decrements owed (if any)."""
        if self._unconfirmed is None and self.decrements:
            self._unconfirmed = (next(self._decrement_ids), self.decrements)
            self.decrements = {}
        decrement_id, owed = self._unconfirmed or (0, {})
        pairs: list[str | int] = []
        for channel, count in owed.items():
            pairs += (channel, count)
        last_batch, size, last = ("", 0, b"") if self._unacked is None else self._unacked
        return scripts.ACK.command(
            (self.count_key, self.inbox),
            last_batch,
            size,
            last,
            self._batch,
            decrement_id,
            self.ttl_ms,
            *pairs,
        )

    async def _refused(self, errors: list[ResponseError], *, idle: bool) -> None:
        """A round got ``errors`` as replies: reload the scripts (``NOSCRIPT`` among them), and
        say so and wait a little before the next round if nothing was read (``idle``)."""
        if any(isinstance(error, NoScriptError) for error in errors):  # nobody loaded them yet
            try:
                await self.control.shard.load_scripts([s.source for s in scripts.ALL])
            except Exception as exc:
                logger.warning("Redis layer could not load its scripts: %s", exc)
            if all(isinstance(error, NoScriptError) for error in errors):
                return
        if not self._refusing:
            logger.error("Redis layer inbox reader got an error reply: %s", errors[0])
        self._refusing = True
        if idle:
            await asyncio.sleep(self.max_backoff)

    def _taken(self, channel: str) -> None:
        self.decrements[channel] = self.decrements.get(channel, 0) + 1

    # -- delivery (nothing below suspends) ----------------------------------------------------

    async def deliver(self, entries: list[bytes]) -> None:
        """Deliver inbox ``entries`` into ``local``, in order."""
        now = int(time.time() * 1000)
        loop = asyncio.get_running_loop()
        own = self._own_origin
        for entry in entries:
            head, _, payload = entry.partition(b"\n")
            fields = head.split(b" ")
            if len(fields) == 4 and fields[0] == b"s" and not fields[2].startswith(own):
                # The common case first: another process's send.
                try:
                    expires = int(fields[1])
                    channel = fields[3].decode("ascii")
                except ValueError:
                    self._undecodable(f"a malformed inbox entry {head[:80]!r}", None)
                    continue
                self._send(channel, expires, payload, now, loop)
                continue
            try:
                kind, expires_text, origin, *names = head.decode("ascii").split(" ")
                expires = int(expires_text)
            except ValueError:
                self._undecodable(f"a malformed inbox entry {head[:80]!r}", None)
                continue
            sender, _, seq = origin.partition(":")
            if sender == self.pid and seq.isdigit():
                self.own.read(int(seq))
            if kind == "s" and len(names) == 1:
                self._send(names[0], expires, payload, now, loop)
            elif kind in ("g", "e") and names:
                await self._group_send(names[0], names[1:], kind == "g", expires, payload, now)
            elif kind == "d" and len(names) == 2:
                try:
                    await self.local.group_discard(names[0], names[1])
                except ChannelLayerError as exc:
                    self._undecodable(f"a group_discard from {origin}", exc)
            elif kind == "f":
                await self.flushed(int(seq) if seq.isdigit() else 0)
            else:
                self._undecodable(f"an inbox entry of unknown kind {head[:80]!r}", None)

    def _send(
        self,
        channel: str,
        expires: int,
        payload: bytes,
        now: int,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        if expires <= now:
            self.stats.expired += 1
            self._taken(channel)
            return
        try:
            bound = bound_to(channel, expires) if self.encrypted else b""  # unused if plain
            message = self.codec.unseal(payload, bound, self.token_ttl)
        except UndecodableMessage as exc:
            self._undecodable(f"a message for channel {channel!r}", exc)
            self._taken(channel)
            return
        if self.overflow:
            queue = self.overflow.get(channel)
            if queue is not None:
                self._refill(channel, queue, now, loop)
                if channel in self.overflow:
                    queue.append((expires, message))
                    return
        try:
            if not self.local.put(channel, message, loop):  # fresh from decoding: not copied
                self.overflow[channel] = deque([(expires, message)])
                return
        except ChannelLayerError as exc:  # a bad name or type in an entry we did not write
            self._undecodable(f"a message for channel {channel!r}", exc)
        self._taken(channel)

    async def _group_send(
        self,
        group: str,
        channels: list[str],
        own: bool,
        expires: int,
        payload: bytes,
        now: int,
    ) -> None:
        """A group send reached this process: to ``channels``, and with ``own`` to the members
        this process added itself (``local``'s group, one in-memory group send). Without
        ``own`` the sender (this process) gave those members the message itself: named
        channels that are among them are skipped, not given it twice."""
        members = self.local.members(group) if own or channels else []
        if channels and members:
            mine = set(members)
            channels = [channel for channel in channels if channel not in mine]
        if expires <= now:
            self.stats.expired += len(channels) + (len(members) if own else 0)
            return
        try:
            message = self.codec.unseal(payload, bound_to_group(group, expires), self.token_ttl)
        except UndecodableMessage as exc:
            self._undecodable(f"a group_send to {group!r}", exc)
            return
        skipped = 0
        if self.overflow:
            # Members whose earlier sends wait in overflow: those go first, or it is skipped
            # (as a full channel), never ahead of them.
            if own and any(channel in self.overflow for channel in members):
                channels = [*members, *channels]  # one by one, below
                own = False
            loop = asyncio.get_running_loop()
            for channel in channels:
                queue = self.overflow.get(channel)
                if queue is not None:
                    self._refill(channel, queue, now, loop)
            blocked = [channel for channel in channels if channel in self.overflow]
            skipped += len(blocked)
            channels = [channel for channel in channels if channel not in self.overflow]
        if own:
            try:
                await self.local.group_send(group, message)  # counts and logs its full members
            except ChannelLayerError as exc:
                self._undecodable(f"a group_send to {group!r}", exc)
                return
        named = 0
        for channel in channels:
            try:
                await self.local.send(channel, message)
                named += 1
            except ChannelFull:
                skipped += 1
            except ChannelLayerError as exc:
                self._undecodable(f"a group_send to {group!r}", exc)
                return
        if named:  # members added by another process: an observation of their own
            self.local.fanout.observe(named)
        if skipped:
            self.report_group_full(group, message, skipped)

    def _refill(
        self,
        channel: str,
        queue: deque[tuple[int, Message]],
        now: int,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        """Move overflowed messages of ``channel`` into ``local`` while it has room."""
        while queue:
            expires, message = queue[0]
            if expires <= now:
                self.stats.expired += 1
            elif not self.local.put(channel, message, loop):
                return
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
        """The flush marker ``seq`` was read: drop everything read before it.

        Capacity owed to Redis is still given back (sends made after the flush's ``UNLINK``
        and read before its marker were counted anew), so no slot leaks; a count the flush
        deleted may then go below what Redis holds, letting a channel take a few sends over
        its capacity once, right after a flush.
        """
        self.drop_overflow()
        await self.local.flush()
        for pending in [s for s in self._flushes if s <= seq]:
            future = self._flushes.pop(pending)
            if not future.done():
                future.set_result(None)

    def drop_overflow(self) -> None:
        """Drop the overflowed messages, giving back the capacity they held in Redis."""
        for channel, queue in self.overflow.items():
            self.decrements[channel] = self.decrements.get(channel, 0) + len(queue)
        self.overflow.clear()

    def _undecodable(self, what: str, exc: Exception | None) -> None:
        self.stats.undecodable += 1
        self.log_lines.event(
            logger,
            "undecodable",
            logging.ERROR,
            "Redis layer dropped {count} entry(ies) that could not be decoded (latest: {what}: "
            "{exc}); counted in stats.undecodable",
            what=what,
            exc=exc,
        )


__all__ = ["InboxReader"]
