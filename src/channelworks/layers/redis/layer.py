"""``RedisChannelLayer``: the channel layer contract over Redis, for many processes.

How it moves messages (docs/redis.md has the whole design and the keyspace is in keys.py):

- a *process-local* channel (``new_channel()``, with ``!``) is read by its process only: a
  send pushes an entry onto that process's inbox list (one script, one round trip, shared by
  the sends to that process made in the same loop iteration: sends.py), and the
  process's one ``InboxReader`` task moves entries into a local ``InMemoryChannelLayer``,
  which gives receivers the in-memory guarantees (waiters, cancellation, expiry);
- a *normal* channel is a Redis list that any process may pop: each receive pops one entry
  (cancel-safe, see pop.py), so several workers share its messages;
- a group is a sorted set of the *processes* with members (``@pid``; each process keeps its
  own members in ``local``) and of channels added by a process that does not own them;
  ``group_send`` delivers to this process's members in memory and costs one round trip on a
  single server (a script pushes one entry per other live process) and two when sharded; on
  a server's loop (home loop, reader running), single server, that round trip is queued for a
  flusher task and not awaited (group_queue.py): its failures are counted and logged, not
  raised;
- a send to one of this layer's own channels is delivered in memory, without Redis
  (``deliver_locally``), unless entries this layer pushed to its own inbox are still
  unread: then it goes through the inbox too, behind them, so order per sender holds.

Concurrency hazard: a layer's connections, reader and keeper belong to its *home* loop, the
first loop it does I/O on; a call from another loop (``async_to_sync`` in a thread) uses
connections of its own for that call (connections.py). The bookkeeping here is not locked:
drive one layer from one loop at a time, plus such calls.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import math
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, ClassVar

from channelworks.exceptions import ChannelFull, InvalidChannelName, Unrecoverable
from channelworks.layers.base import DEFAULT_MAX_MESSAGE_SIZE, BaseChannelLayer, CapacityPatterns
from channelworks.layers.codec import Codec, UndecodableMessage
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
from channelworks.layers.memory import InMemoryChannelLayer
from channelworks.layers.names import require_channel_name, require_group_name, require_message
from channelworks.layers.presence import DEFAULT_INTERVAL, DEFAULT_TIMEOUT, PresenceLayer
from channelworks.layers.redis import scripts
from channelworks.layers.redis.compat_names import ChannelsRedisNames
from channelworks.layers.redis.connections import Home, Links
from channelworks.layers.redis.epochs import Epochs
from channelworks.layers.redis.errors import ForeignChannel, LayerClosed
from channelworks.layers.redis.group_queue import MAX_QUEUED, GroupSend, QueuedGroupSends
from channelworks.layers.redis.hosts import parse_hosts
from channelworks.layers.redis.keeper import Keeper
from channelworks.layers.redis.keys import Keyspace, bound_to, bound_to_group, process_of
from channelworks.layers.redis.pipeline import RETRYABLE, Pipeline, backoff
from channelworks.layers.redis.pop import Popper
from channelworks.layers.redis.reader import InboxReader, OwnPushes
from channelworks.layers.redis.sends import LocalSends, Target, pack_head
from channelworks.layers.redis.shard import BLOCK_SECONDS, Command
from channelworks.layers.redis.stats import RedisLayerStats

logger = logging.getLogger("channelworks.layers.redis")

Message = dict[str, Any]

#: bytes a message may take on the wire (msgpack, encrypted if so configured), by default
#: channels_redis options accepted so that its settings run unchanged
COMPAT_OPTIONS = frozenset({"serializer_format", "random_prefix"})
#: members per ZREM when a sharded group_send removes dead members
ZREM_CHUNK = 500
#: process-local channel names whose ``Target`` a layer keeps (then it starts afresh)
MAX_TARGETS = 10_000
#: seconds group sends wait after Redis lost its data (the restore window, scripts.py EPOCH):
#: long enough for every live process to notice (its reader's round trip, at most a second
#: apart, or its reconnect, whose backoff is capped at 2 s +50 % jitter) and restore its
#: liveness and memberships
RESTORE_WINDOW = 5.0
#: seconds between the inbox reader's looks at the epoch while it is busy (idle, each round
#: trip looks: it waits a second for entries anyway)
EPOCH_EVERY = 0.5
#: seconds between a sharded layer's looks at the epochs of the servers its reader is not on
EPOCH_LOOK = 1.0


class RedisChannelLayer(
    PresenceLayer, LocalSends, QueuedGroupSends, ChannelsRedisNames, BaseChannelLayer
):
    """A channel layer over Redis: many processes, many machines; see docs/redis.md.

    Options as in channels_redis: ``hosts`` (URLs, ``(host, port)`` pairs, dicts of redis-py
    connection options; several for sharding), ``prefix``, ``expiry``, ``group_expiry``,
    ``capacity``, ``channel_capacity``, ``symmetric_encryption_keys``. Ours:
    ``sentinels`` and ``master_name`` (and ``sentinel_kwargs``) for Sentinel; ``cluster=True``
    for Redis Cluster; ``process_timeout`` (seconds after which a silent process counts as
    dead, default 60); ``refresh_interval`` (seconds between heartbeats, default a third of
    ``min(group_expiry, process_timeout)``); ``retry_timeout`` (seconds an operation keeps
    retrying a lost connection before it raises ``RedisUnavailable``, default 3);
    ``deliver_locally`` (sends to this layer's own channels skip Redis, default on);
    ``max_message_size`` (bytes a message may take on the wire, default 1 MiB, ``None`` for no
    limit; over it ``send``/``group_send`` raise ``MessageTooLarge``); ``history`` (group
    patterns whose sends are kept in a Redis stream for ``history()``, as
    ``{"chat.*": {"size": 500, "ttl": 3600}}``; docs/redis.md); ``presence_interval`` and
    ``presence_timeout`` (presence diffs gathered per window, default 0.05 s; a silent
    process's presences gone after 30 s; docs/presence.md).
    """

    extensions: ClassVar[list[str]] = ["groups", "flush", "history", "presence"]
    stats: RedisLayerStats

    def __init__(
        self,
        hosts: Iterable[object] | str | None = None,
        prefix: str = "asgi",
        expiry: float = 60,
        group_expiry: float = 86400,
        capacity: int = 100,
        channel_capacity: CapacityPatterns | None = None,
        symmetric_encryption_keys: Iterable[str | bytes] | None = None,
        *,
        sentinels: Iterable[object] | None = None,
        master_name: str | None = None,
        sentinel_kwargs: Mapping[str, Any] | None = None,
        cluster: bool = False,
        process_timeout: float = 60,
        refresh_interval: float | None = None,
        retry_timeout: float = 3.0,
        deliver_locally: bool = True,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        history: HistorySetting | None = None,
        presence_interval: float = DEFAULT_INTERVAL,
        presence_timeout: float = DEFAULT_TIMEOUT,
        **options: Any,
    ) -> None:
        self.setup_presence(presence_interval, presence_timeout)
        super().__init__(
            expiry, group_expiry, capacity, channel_capacity, max_message_size=max_message_size
        )
        self.history_config = HistoryConfig(history)
        unknown = set(options) - COMPAT_OPTIONS
        if unknown:
            raise TypeError(f"RedisChannelLayer got unknown option(s) {sorted(unknown)}")
        if options.get("serializer_format", "msgpack") != "msgpack":
            raise ValueError("RedisChannelLayer serialises with msgpack only")
        if process_timeout <= 0 or retry_timeout < 0:
            raise ValueError("process_timeout must be positive and retry_timeout not negative")
        self.hosts = parse_hosts(
            hosts,
            sentinels=sentinels,
            master_name=master_name,
            sentinel_kwargs=sentinel_kwargs,
            cluster=cluster,
        )
        self.keys = Keyspace(prefix)
        self.prefix = self.keys.prefix
        self.codec = Codec(symmetric_encryption_keys)
        self.process_timeout = process_timeout
        hold = min(group_expiry, process_timeout)
        self.refresh_interval = refresh_interval if refresh_interval else hold / 3
        if not 0 < self.refresh_interval < hold:
            raise ValueError("refresh_interval must be below min(group_expiry, process_timeout)")
        self.retry_timeout = retry_timeout
        self.deliver_locally = deliver_locally
        #: seconds an encrypted payload is accepted after it was made (expiry, plus slack
        #: for clocks that disagree a little)
        self._token_ttl = math.ceil(expiry) + 30
        self.stats = RedisLayerStats()
        #: this layer's process id: its channels are ``{prefix}.{pid}!{n}``
        self.pid = secrets.token_hex(8)
        self._marker = f".{self.pid}!"
        self._pid_bytes = self.pid.encode()
        self._own_member = f"@{self.pid}"  # this process in a group's zset
        self._links = Links(self.hosts, retry_timeout, self.stats, self.log_lines)
        self._own_shard = self._links.shard_of(self.pid)
        self._expiry_ms = int(expiry * 1000)
        self._group_expiry_ms = int(group_expiry * 1000)
        self._hold_ms = int(hold * 1000)
        # measured here, on the wire: the local layer does not measure again
        self.local = InMemoryChannelLayer(
            expiry, group_expiry, capacity, channel_capacity, max_message_size=None
        )
        self.local.stats = self.stats  # one set of counters for the whole layer
        self.local.fanout = self.fanout  # and of fan-outs: the readers deliver through local
        self._plain = Codec()
        self._counter = itertools.count()
        self._popper_tags = itertools.count()
        self._seq = itertools.count(1)
        self._own = OwnPushes()  # this layer's own-inbox entries Redis accepted, not yet read
        self._dead_logged: set[str] = set()  # dead processes whose drop was logged
        #: the inbox reader, made with the first home loop and kept across home loops
        self._reader: InboxReader | None = None
        # Single-server group sends made on the home loop while its reader runs: their Redis
        # part waits here for the flusher task, in order (see group_send).
        self._queue: deque[GroupSend] = deque()
        self._tickets = 0  # group sends ever queued
        self._done = 0  # of those, how many are done (sent, or counted and logged as lost)
        self._own_queued = 0  # queued ones that may push to this process's own inbox
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()
        self._flusher: asyncio.Task[None] | None = None
        self._abandon = False  # close() gave up waiting: the flusher stops when cancelled
        self._targets: dict[str, Target] = {}  # process-local channels sent to, by name
        # The epoch of each server's data: noticing that Redis lost it (epochs.py)
        self._epochs = Epochs(
            keys=self.keys,
            pid=self.pid,
            stats=self.stats,
            enabled=not self.hosts[0].cluster_nodes,
            window=RESTORE_WINDOW,
            ttl_ms=int(max(3 * process_timeout, 60) * 1000),
            restore=self._restore_now,
            groups=lambda: len(self.local.group_names()),
        )

    # -- point to point -----------------------------------------------------------------------

    async def send(self, channel: str, message: Message) -> None:
        target = self._targets.get(channel) if channel.__class__ is str else None
        if target is None:
            require_channel_name(channel)
            if "!" in channel:
                target = self._target(channel)
        require_message(message)
        if self._queue:
            await self._settled()
        if target is None:  # a normal channel
            now = _now_ms()
            expires = now + self._expiry_ms
            entry = b"%d\n" % expires + self._encode(message, channel, expires)
            accepted, dropped = await self._links.call(
                self._links.shard_of(channel),
                self._send_normal(channel, entry, now),
                "send",
                channel,
            )
            self.stats.expired += dropped
            if not accepted:
                raise ChannelFull(channel)
            return
        if target.own:
            home = self._links.home
            if home is None or home.reader is None or home.loop.is_closed():
                # One of this process's channels while its reader is stopped (its home loop
                # ended, or close_pools()): start it here, as receive does, or the send would
                # find this process not alive and drop the message.
                await self._start_reader()
            if self._may_deliver_locally(channel):
                plain = self._plain.encode(message)
                self.require_size(len(plain), channel)
                await self.local.send(channel, self._plain.decode(plain))
                return
        pid = target.pid
        seq = next(self._seq)
        expires = int(time.time() * 1000) + self._expiry_ms
        payload = self._encode(message, channel, expires)
        head = b"s %d %s:%d %s\n" % (expires, self._pid_bytes, seq, target.name)
        # the entry, packed as a SEND_LOCAL argument (``pack_arg``) in the same step
        entry = b"$%d\r\n%s%s\r\n" % (len(head) + len(payload), head, payload)
        home = self._links.at_home()
        if home is None:  # another loop's (or the first) call: a batch of its own
            outcome = await self._send_alone(channel, target, entry, seq)
        else:
            batch = home.batches.get(pid)
            if batch is None:
                outcome = await self._lead(home, channel, target, entry, seq)
            else:  # the common case inlined: join the batch this loop iteration has open
                future = self._join(batch, channel, target, entry, seq)
                try:
                    outcome = await future
                finally:
                    home.sending -= 1
        if not outcome:
            raise ChannelFull(channel)

    def _target(self, channel: str) -> Target:
        """What a send to the process-local ``channel`` (a valid name) needs, kept for the
        next send to it (names are checked and split once, not per send)."""
        pid = process_of(channel)
        name = channel.encode()
        capacity = self.get_capacity(channel)
        target = Target(pid, name, capacity, pack_head(name, capacity), self._marker in channel)
        if len(self._targets) >= MAX_TARGETS:
            self._targets.clear()
        self._targets[channel] = target
        return target

    def _send_normal(self, channel: str, entry: bytes, now: int) -> Command:
        """The SEND_NORMAL call that pushes ``entry`` onto the normal channel ``channel``."""
        return scripts.SEND_NORMAL.command(
            (self.keys.channel(channel),), self.get_capacity(channel), entry, self._expiry_ms, now
        )

    def _encode(self, message: Message, target: str, expires: int, *, group: bool = False) -> bytes:
        """``message``'s payload for an entry to the channel (or ``group``) ``target`` that
        expires at ``expires`` (sealed to those when encrypting); raise ``MessageTooLarge`` if
        it is over max_message_size."""
        if self.codec.encrypted:
            bound = bound_to_group(target, expires) if group else bound_to(target, expires)
            payload = self.codec.seal(message, bound)
        else:
            payload = self.codec.encode(message)  # nothing to authenticate it with
        limit = self.max_message_size
        if limit is not None and len(payload) > limit:
            self.require_size(len(payload), target)
        return payload

    def _may_deliver_locally(self, channel: str | None) -> bool:
        """Whether a send to ``channel`` (None: a group send) may skip Redis and the inbox:
        nothing this layer pushed to its own inbox is unread, and nothing waits in overflow."""
        home = self._links.home
        reader = home.reader if home is not None else None
        return (
            self.deliver_locally
            and not self._own_queued
            and reader is not None
            and not self._own.unread
            and (channel not in reader.overflow if channel is not None else not reader.overflow)
        )

    def receive_nowait(self, channel: str) -> Message | None:
        if isinstance(channel, str) and self._marker in channel:
            message = self.local.receive_nowait(channel)
            if message is None:
                home = self._links.home
                if home is not None and home.reader is not None and home.reader.overflow:
                    message = home.reader.take(channel)
            return message
        require_channel_name(channel)
        if "!" in channel:
            raise ForeignChannel(channel)
        return None

    def reader_calls(
        self, channel: str, loop: asyncio.AbstractEventLoop
    ) -> tuple[Callable[[str], Message | None], Callable[[str], Awaitable[Message]]]:
        """For a reader of one of this process's channels: the poll looks in ``local`` only,
        and the wait (after a poll found nothing) serves what waits in overflow first (it is
        newer than what ``local`` held), then waits in ``local`` at once."""
        kind = type(self)
        if (
            kind.receive is not RedisChannelLayer.receive
            or kind.receive_nowait is not RedisChannelLayer.receive_nowait
            or not (isinstance(channel, str) and self._marker in channel)
        ):
            return self.receive_nowait, self.receive
        return self.local.receive_nowait, functools.partial(self._receive_next, loop=loop)

    def _receive_next(self, channel: str, loop: asyncio.AbstractEventLoop) -> Awaitable[Message]:
        home = self._links.home
        reader = home.reader if home is not None else None
        if reader is None or reader.overflow:  # the whole way: it starts the reader, or
            return self.receive(channel)  # serves overflow
        return self.local.receive_next(channel, loop)

    async def receive(self, channel: str) -> Message:
        if isinstance(channel, str) and self._marker in channel:
            home = self._links.home
            reader = home.reader if home is not None else None
            if reader is None:
                await self._start_reader()
            else:  # what is queued (or waits in overflow), without another coroutine
                message = self.receive_nowait(channel)
                if message is not None:
                    return message
            return await self.local.receive(channel)
        require_channel_name(channel)
        if "!" in channel:
            raise ForeignChannel(channel)
        return await self._receive_normal(channel)

    async def _receive_normal(self, channel: str) -> Message:
        key = self.keys.channel(channel)
        connections, own = await self._links.here()
        index = self._links.shard_of(channel)
        pipeline = connections.pipelines[index]
        idle = connections.poppers[index]
        popper = idle.pop() if idle else self._popper(pipeline, connections.tasks)
        task = asyncio.current_task()
        done = asyncio.Event()
        if task is not None:
            connections.receivers[task] = done
        hold = self.keys.hold(channel, popper.tag)

        async def restore(replies: list[Any]) -> None:
            # Runs before the popper's next read starts, so ``held`` is still this read's.
            if not isinstance(replies[-2], bytes) or await self._restore(
                pipeline, key, hold, [replies[-2]]
            ):
                popper.held = None

        try:
            failures = 0
            while True:
                # The entry moves into this receive's hold list, deleted once it is here
                # (``then``); a reply lost on the wire leaves it there, and the next read
                # moves it back to the head of the channel first (``popper.held``).
                commands: list[Command] = [
                    ("BLMOVE", key, hold, "LEFT", "RIGHT", BLOCK_SECONDS),
                    ("PEXPIRE", hold, self._expiry_ms),
                ]
                await popper.idle()  # an abandoned read's put-back first: it may clear held
                if popper.held is not None and popper.held[1] != key:
                    await self._give_back_held(popper, pipeline)  # on its own node
                if popper.held is not None:
                    held, origin = popper.held
                    commands[:0] = [
                        ("LMOVE", held, origin, "RIGHT", "LEFT"),
                        ("PEXPIRE", origin, self._expiry_ms),
                    ]
                try:
                    replies = await popper.run(
                        commands,
                        then=lambda replies: [("DEL", hold)] if replies[-2] else [],
                        abandoned=restore,
                        holds=(hold, key),
                    )
                except RETRYABLE as exc:  # receivers wait for Redis to come back
                    if failures == 0:
                        logger.warning("Redis layer receive(%r) waits for Redis: %s", channel, exc)
                    failures += 1
                    await asyncio.sleep(backoff(failures - 1, base=0.1, cap=2.0))
                    continue
                if isinstance(replies[0], Exception):
                    raise replies[0]
                popper.held = None
                entry = replies[-2]
                if not entry:
                    continue
                expires, _, payload = entry.partition(b"\n")
                if int(expires) <= _now_ms():
                    self.stats.expired += 1
                    continue
                try:
                    return self.codec.unseal(
                        payload, bound_to(channel, int(expires)), self._token_ttl
                    )
                except UndecodableMessage as exc:
                    self.stats.undecodable += 1
                    self.log_lines.event(
                        logger,
                        ("undecodable", channel),
                        logging.ERROR,
                        "Redis layer dropped {count} message(s) on {channel!r} that could not "
                        "be decoded (latest: {exc}); counted in stats.undecodable",
                        channel=channel,
                        exc=exc,
                    )
        except asyncio.CancelledError:
            # close() cancelled us (and nobody else did): end with LayerClosed
            if connections.closed and task is not None and task.uncancel() == 0:
                raise LayerClosed(channel) from None
            raise
        finally:
            if task is not None:
                connections.receivers.pop(task, None)
            if own and not connections.closed:
                idle.append(popper)  # a cancelled read it still finishes holds it meanwhile
            else:
                await self._release(popper, pipeline)
                if not own:
                    await connections.aclose()
            done.set()

    def _popper(self, pipeline: Pipeline, tasks: set[asyncio.Task[Any]]) -> Popper:
        return Popper(pipeline, tasks, tag=f"{self.pid}.{next(self._popper_tags)}")

    async def _release(self, popper: Popper, pipeline: Pipeline) -> None:
        """Give ``popper``'s connection back, after moving back what its hold may hold."""
        await popper.release()
        await self._give_back_held(popper, pipeline)

    async def _give_back_held(self, popper: Popper, pipeline: Pipeline) -> None:
        """Move what ``popper``'s hold list may still hold back to the head of its channel."""
        if popper.held is not None:
            hold, key = popper.held
            popper.held = None
            try:
                await pipeline.run(
                    [("LMOVE", hold, key, "RIGHT", "LEFT"), ("PEXPIRE", key, self._expiry_ms)]
                )
            except Exception as exc:
                self.stats.lost += 1
                logger.error(
                    "Redis layer may have lost a message of %s: a receive held it when Redis "
                    "went away, and it could not be put back (%s); it expires in %s",
                    key,
                    exc,
                    hold,
                )

    async def _restore(self, pipeline: Pipeline, key: str, hold: str, entries: list[bytes]) -> bool:
        """Put ``entries`` popped for a receiver that went away back at the head of ``key``;
        -> whether they are back (else they were counted in ``stats.lost`` and logged)."""
        try:
            await pipeline.run(
                [
                    ("LPUSH", key, *reversed(entries)),
                    ("PEXPIRE", key, self._expiry_ms),
                    ("DEL", hold),
                ]
            )
        except Exception as exc:
            # Still in the hold list unless its DEL had gone out: the next read of this
            # popper moves it back then. Counted as lost all the same (it may be).
            self.stats.lost += len(entries)
            logger.error(
                "Redis layer may have lost %d message(s) of %s: taken for a cancelled receive "
                "and Redis went away before they could be put back (%s)",
                len(entries),
                key,
                exc,
            )
            return False
        return True

    async def new_channel(self, prefix: str = "specific") -> str:
        if not isinstance(prefix, str) or "!" in prefix:
            raise InvalidChannelName("channel prefix", prefix, "must be a str without '!'")
        home = self._links.home
        if home is None or home.reader is None or home.loop.is_closed():
            await self._start_reader()
        return require_channel_name(f"{prefix}{self._marker}{next(self._counter)}")

    # -- groups -------------------------------------------------------------------------------

    # A group's zset holds ``@<pid>`` for each process with members of its own (the process
    # knows them: they are in ``local``'s groups, which expire them by read as the contract
    # says), renewed by that process's heartbeat, and member channels added by a process that
    # does not own them (or normal channels), with the score ``now + group_expiry``.

    async def group_add(self, group: str, channel: str) -> None:
        require_group_name(group)
        require_channel_name(channel)
        if "!" in channel:
            process_of(channel)  # refuses a channel without a process id
        if self._queue:
            await self._settled()
        own = self._marker in channel
        if own:
            await self.local.group_add(group, channel)
            member, score = self._own_member, _now_ms() + self._hold_ms
        else:
            member, score = channel, _now_ms() + self._group_expiry_ms
        await self._add_member(group, member, score)
        if own:
            await self._match_own(group, present=True)

    async def _add_member(self, group: str, member: str, score: int) -> None:
        await self._links.call(
            self._links.shard_of(group),
            scripts.GROUP_ADD.command(
                (self.keys.group(group),), self._group_expiry_ms, "GT", score, member
            ),
            "group_add",
            group,
        )

    async def _match_own(self, group: str, present: bool) -> None:
        """Make this process's entry in ``group`` (``@pid``) match its local members, after a
        ZADD (``present``) or ZREM of it. Other calls for our channels may have changed the
        local members meanwhile, and their ZADD or ZREM may reach Redis in another order than
        the changes were made: a member left without the entry (its messages missed until
        the next heartbeat), or the entry left without a member. Each call corrects after its
        own command, so the last one to reach Redis leaves it right."""
        while bool(self.local.members(group)) != present:
            present = not present
            if present:
                await self._add_member(group, self._own_member, _now_ms() + self._hold_ms)
            else:
                await self._links.call(
                    self._links.shard_of(group),
                    ("ZREM", self.keys.group(group), self._own_member),
                    "group_discard",
                    group,
                )

    async def group_discard(self, group: str, channel: str) -> None:
        require_group_name(group)
        require_channel_name(channel)
        if self._queue:
            await self._settled()
        gone: list[str] = [channel]
        if self._marker in channel:
            await self.local.group_discard(group, channel)
            if not self.local.members(group):
                gone.append(self._own_member)
        await self._links.call(
            self._links.shard_of(group),
            ("ZREM", self.keys.group(group), *gone),
            "group_discard",
            group,
        )
        if len(gone) > 1:
            await self._match_own(group, present=False)
        if "!" in channel and self._marker not in channel:
            # The owner may hold it as a member of its own: tell it, through its inbox.
            pid = process_of(channel)
            entry = b"d 0 %s:%d %s %s\n" % (  # unique header, as every entry's (scripts.ACK)
                self._pid_bytes,
                next(self._seq),
                group.encode(),
                channel.encode(),
            )
            await self._links.call(
                self._links.shard_of(pid),
                scripts.GROUP_PUSH.command(
                    (self.keys.inbox(pid), self.keys.alive(pid)), entry, self._expiry_ms
                ),
                "group_discard",
                group,
            )

    async def group_send(
        self, group: str, message: Message, *, history: bool | None = None
    ) -> StreamPosition | None:
        if history is None and not self.history_config.patterns:
            await self._group_send(group, message)  # no history anywhere: as it always was
            return None
        options = self.history_config.for_send(group, history)
        if options is None:
            await self._group_send(group, message)
            return None
        position = await self._append(group, message, options)
        await self._group_send(group, with_position(message, position))
        return position

    # -- history (docs/redis.md "History"; rules shared with every backend: history.py) -----

    async def _append(
        self, group: str, message: Message, options: HistoryOptions
    ) -> StreamPosition:
        """Append ``message`` to ``group``'s stream (one round trip, HISTORY_APPEND) once it is
        known that the group send that follows will not refuse it; -> its position.

        A retried append (broken connection) may store the message twice, at two offsets, as
        a retried group send may deliver it twice.
        """
        require_group_name(group)
        require_message(message)
        require_unpositioned(message)
        # Measured as it will travel, with the largest position it could carry: a message the
        # group send would refuse must not enter the log.
        widest = with_position(message, StreamPosition(2**64 - 1, "0" * len(new_epoch())))
        self._encode(widest, group, _now_ms() + self._expiry_ms, group=True)
        stored = self.codec.seal(message, _history_bound(group))
        command = scripts.HISTORY_APPEND.command(
            (self.keys.history(group), self.keys.history_meta(group)),
            new_epoch(),
            options.size,
            options.ttl_ms,
            stored,
        )
        offset, epoch = await self._links.call(
            self._links.shard_of(group), command, "group_send", group
        )
        self.stats.history_appends += 1
        return StreamPosition(int(offset), _text(epoch))

    async def history(
        self,
        group: str,
        *,
        since: StreamPosition | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> HistoryResult:
        require_group_name(group)
        require_limit(limit)
        with counted_read(self.stats):  # reads and Unrecoverable counted
            options = self.history_config.for_read(group)
            command = scripts.HISTORY_READ.command(
                (self.keys.history(group), self.keys.history_meta(group)),
                new_epoch(),
                options.ttl_ms,
                since.epoch if since is not None else "",
                since.offset if since is not None else -1,
                limit,
            )
            epoch_b, top, oldest, raw = await self._links.call(
                self._links.shard_of(group), command, "history", group
            )
            epoch = _text(epoch_b)
            bound = _history_bound(group)
            entries = []
            for entry_id, fields in raw:
                offset = int(_text(entry_id).partition("-")[0])
                payload = fields[fields.index(b"m") + 1] if b"m" in fields else b""
                try:
                    entries.append((offset, self.codec.unseal(payload, bound)))
                except UndecodableMessage as exc:
                    self.stats.undecodable += 1
                    raise Unrecoverable(
                        group,
                        since,
                        StreamPosition(int(top), epoch),
                        f"an entry of the log cannot be decoded ({exc})",
                    ) from exc
            if since is None:
                entries.reverse()  # XREVRANGE: newest first
            return select(
                group,
                entries,
                epoch=epoch,
                top=int(top),
                oldest=int(oldest) or None,
                since=since,
                limit=limit,
            )

    async def _group_send(self, group: str, message: Message) -> None:
        require_group_name(group)
        require_message(message)
        now = _now_ms()
        expires = now + self._expiry_ms
        payload = self._encode(message, group, expires, group=True)
        seq = next(self._seq)
        # This process's own members get it straight into their local queues (one in-memory
        # group send), unless entries it pushed to its own inbox are unread (order per sender).
        members_here = bool(self.local.members(group))
        local = members_here and self._may_deliver_locally(None)
        if local:  # what a process reading the payload would get: msgpack's copy
            copy = self._plain.decode(
                payload if not self.codec.encrypted else self._plain.encode(message)
            )
            await self.local.group_send(group, copy)
        header = f"{expires} {self.pid}:{seq} {group}"
        if self._links.single_server:
            command = scripts.GROUP_SEND.command(
                (self.keys.group(group), self.keys.epoch),
                now,
                self.prefix,
                header,
                payload,
                self._expiry_ms,
                self.pid,
                self.pid if local else "",
                self._epochs.known.get(0, ""),
                self.pid,
                int(self._epochs.window * 1000),
                self._epochs.ttl_ms,
            )
            home_loop = self._queuing_loop()
            if home_loop is not None:
                # A server's loop: the Redis part goes to the flusher and this returns without
                # yielding, so a sender hands over its group sends back to back (and the
                # members here wake once for several messages, as with the in-memory layer).
                flusher = self._flusher
                if flusher is not None and (flusher.done() or flusher.get_loop() is not home_loop):
                    # Left on a loop that ended without running it to its end, or cancelled
                    # before it ran: what it held is lost (counted and logged); start afresh.
                    self._flusher = flusher = None
                    self._drop_queued()
                self._tickets += 1
                pending = GroupSend(
                    self._tickets,
                    group,
                    message,
                    payload,
                    expires,
                    now,
                    seq,
                    command,
                    own=not local and members_here,
                )
                self._own_queued += pending.own
                self._queue.append(pending)
                if flusher is None:
                    self._start_flusher()
                if len(self._queue) > MAX_QUEUED:
                    await self._settled(pending.ticket)
                return
            if self._queue:
                await self._settled()
            reply = await self._links.call(0, command, "group_send", group)
            while scripts.held(reply):  # Redis lost its data: after the restore window
                await self._held(reply)
                command = self._rearm(command)
                reply = await self._links.call(0, command, "group_send", group)
            await self._group_sent(group, message, payload, expires, now, seq, reply)
            return
        if self._queue:
            await self._settled()
        shard = self._links.shard_of(group)
        while True:
            members = await self._links.call(
                shard, self._group_members(group, shard, now), "group_send", group
            )
            if not scripts.held(members):
                break
            await self._held(members, shard)  # Redis lost its data: after the restore window
        dead, normal = await self._push_to_members(
            [member.decode() for member in members], header, payload, seq, group, local
        )
        skipped = await self._send_normal_members(normal, message, payload, expires, now, group)
        self._report_group_send(group, message, dead, skipped)

    async def _group_sent(
        self,
        group: str,
        message: Message,
        payload: bytes,
        expires: int,
        now: int,
        seq: int,
        reply: list[Any],
    ) -> None:
        """What follows a single-server GROUP_SEND's reply: normal-channel members, reports."""
        dead, own, *members = reply
        if own:
            self._own.accepted(seq)
        normal = [member.decode() for member in members]
        skipped = await self._send_normal_members(normal, message, payload, expires, now, group)
        self._report_group_send(group, message, dead, skipped)

    # -- Redis losing its data (epochs.py) ----------------------------------------------------

    def _group_members(self, group: str, shard: int, now: int) -> Command:
        """The GROUP_MEMBERS call of a sharded ``group_send`` (held while its server's epoch
        is not the one this process knows, or a restore window is open; not on a cluster)."""
        if not self._epochs.enabled:
            return scripts.GROUP_MEMBERS.command((self.keys.group(group),), now)
        epochs = self._epochs
        return scripts.GROUP_MEMBERS.command(
            (self.keys.group(group), self.keys.epoch),
            now,
            epochs.known.get(shard, ""),
            self.pid,
            int(epochs.window * 1000),
            epochs.ttl_ms,
        )

    def _restore_now(self) -> bool:
        """Have the keeper beat now (restoring this process's state); -> whether a keeper
        runs on the running loop."""
        home = self._links.at_home()
        if home is None or home.keeper is None:
            return False
        home.keeper.wake()
        return True

    def _rearm(self, command: Command) -> Command:
        return self._epochs.rearm(command)

    async def _held(self, reply: Any, shard: int = 0) -> None:
        """A group send was held (Redis lost its data on ``shard``, or a restore window is
        open): have this process's own state restored, then wait for the window to close,
        before it goes again. Bounded: ``retry_timeout`` plus the window."""
        window = self._epochs.saw(shard, reply)
        deadline = asyncio.get_running_loop().time() + self.retry_timeout + self._epochs.window
        await self._epochs.wait_restored(shard, deadline)
        await asyncio.sleep(min(window, self._epochs.window))

    async def _look_at_epochs(self) -> None:
        """The watcher of a sharded layer: the epoch of every server but its own (which its
        reader looks at), once a second, so this process restores its memberships there
        within a second of a server losing its data."""
        home = self._links.home
        if home is None:
            return
        shards = [i for i in range(len(home.pipelines)) if i != self._own_shard]
        results = await asyncio.gather(
            *(home.pipelines[i].run([self._epochs.command(i)]) for i in shards)
        )
        for shard, (reply,) in zip(shards, results, strict=True):
            if isinstance(reply, Exception):
                raise reply
            self._epochs.saw(shard, reply)

    def _report_group_send(self, group: str, message: Message, dead: int, skipped: int) -> None:
        if dead:
            self.stats.dead_members += dead
            self.log_lines.event(
                logger,
                ("dead_members", group),
                logging.WARNING,
                "Redis layer group_send to {group!r} skipped and removed {count} member(s) "
                "whose process is not alive; counted in stats.dead_members",
                dead,
                group=group,
            )
        if skipped:
            self.report_group_full(group, message, skipped)

    async def _push_to_members(
        self, members: list[str], header: str, payload: bytes, seq: int, group: str, local: bool
    ) -> tuple[int, list[str]]:
        """Sharded ``group_send``: what GROUP_SEND does, one round trip per shard, all at once.

        -> (members removed as dead, normal-channel members)
        """
        by_process: dict[str, list[str]] = {}
        normal: list[str] = []
        for member in members:
            if member.startswith("@"):
                by_process.setdefault(member[1:], []).insert(0, member)
            elif "!" in member:
                by_process.setdefault(process_of(member), []).append(member)
            else:
                normal.append(member)
        batches: dict[int, list[Command]] = {}
        pushes: dict[int, list[str]] = {}
        for pid, names in by_process.items():
            whole = bool(names) and names[0].startswith("@")
            channels = names[1:] if whole else names
            if pid == self.pid and local:
                if not channels:
                    continue
                kind = "e"
            else:
                kind = "g"
            text = " ".join([f"{kind} {header}", *channels])
            batches.setdefault(self._links.shard_of(pid), []).append(
                scripts.GROUP_PUSH.command(
                    (self.keys.inbox(pid), self.keys.alive(pid)),
                    text.encode() + b"\n" + payload,
                    self._expiry_ms,
                )
            )
            pushes.setdefault(self._links.shard_of(pid), []).append(pid)
        indexes = list(batches)
        results = await asyncio.gather(
            *(self._links.batch(i, batches[i], "group_send", group) for i in indexes)
        )
        gone: list[str] = []
        for index, replies in zip(indexes, results, strict=True):
            for pid, reply in zip(pushes[index], replies, strict=True):
                if isinstance(reply, Exception):
                    raise reply
                if not reply:
                    gone += by_process[pid]
                elif pid == self.pid:
                    self._own.accepted(seq)
        if gone:  # as GROUP_SEND does on a single server (the zset is on another shard)
            await self._links.batch(
                self._links.shard_of(group),
                [
                    ("ZREM", self.keys.group(group), *gone[i : i + ZREM_CHUNK])
                    for i in range(0, len(gone), ZREM_CHUNK)
                ],
                "group_send",
                group,
            )
        return len(gone), normal

    async def _send_normal_members(
        self,
        channels: list[str],
        message: Message,
        payload: bytes,
        expires: int,
        now: int,
        group: str,
    ) -> int:
        """Send a group message to its normal-channel members; -> how many were full."""
        if not channels:
            return 0
        entry = b"%d\n" % expires + payload
        batches: dict[int, list[Command]] = {}
        for channel in channels:
            if self.codec.encrypted:  # sealed to the group: seal it to the channel
                entry = b"%d\n" % expires + self.codec.seal(message, bound_to(channel, expires))
            batches.setdefault(self._links.shard_of(channel), []).append(
                self._send_normal(channel, entry, now)
            )
        results = await asyncio.gather(
            *(
                self._links.batch(i, commands, "group_send", group)
                for i, commands in batches.items()
            )
        )
        full = 0
        for replies in results:
            for reply in replies:
                if isinstance(reply, Exception):
                    raise reply
                accepted, dropped = reply
                self.stats.expired += dropped
                full += not accepted
        return full

    # -- lifecycle ----------------------------------------------------------------------------

    async def flush(self) -> None:
        """Delete this prefix's keys (except processes' alive keys) and the local state.

        Messages already on their way to this process when ``flush`` starts are dropped too:
        a marker through the inbox tells the reader where "before the flush" ends.
        """
        if self._queue:
            await self._settled()
        connections, own = await self._links.here()
        deleted = set(self._own.unread)  # own-inbox entries in Redis before the delete
        try:
            for pipeline in connections.pipelines:
                try:
                    await pipeline.shard.delete_matching(
                        self.keys.pattern, keep=self.keys.kept_by_flush
                    )
                except RETRYABLE as exc:
                    raise self._links.unavailable("flush", self.prefix, pipeline, exc) from exc
            self._own.gone(deleted)  # read before, or deleted with the inbox: nobody reads them
        finally:
            if not own:
                await connections.aclose()
        home = self._links.home
        reader = home.reader if home is not None else None
        if reader is None or home is None or home.loop is not asyncio.get_running_loop():
            await self.local.flush()
            return
        seq = next(self._seq)
        done = reader.expect_flush(seq)
        await self._links.call(
            self._own_shard,
            ("RPUSH", self.keys.inbox(self.pid), b"f 0 %s:%d\n" % (self.pid.encode(), seq)),
            "flush",
            self.prefix,
        )
        self._own.accepted(seq)
        try:
            await asyncio.wait_for(done, self.retry_timeout + 2)
        except TimeoutError:  # the reader is reconnecting: flush what is here now
            await reader.flushed(seq)

    async def close(self) -> None:
        """Stop the reader and keeper, remove this process's alive key, close connections.

        Messages waiting in this process for its channels are dropped with them, receives
        waiting on them end with ``LayerClosed`` (also a ``StopConsumer``: their consumers end
        quietly), and the process leaves its groups (``@pid``), so nobody finds it there as a
        dead member. The layer may be used again afterwards (it connects anew).
        Group sends still queued are sent first, for up to ``retry_timeout`` (plus a second);
        what is left then is counted in ``stats.lost`` and logged.
        """
        await self.close_presence()  # leaves sent, the others told, while Redis is there
        await self._send_queued()
        await self._links.aclose()
        if self._reader is not None:
            self._reader.drop_overflow()
        # Receives waiting on this process's channels end (nothing more comes to them); the
        # layer stays usable, as channels_redis' after close_pools().
        self.local.end_receives(LayerClosed)
        await self.local.close()
        self.log_lines.flush()

    async def close_pools(self) -> None:
        """Close the running loop's connections now, as the end of that loop would
        (channels_redis' name); the layer stays usable.

        On the home loop: queued group sends are sent first (as in ``close``), the reader and
        keeper stop and the process leaves its groups in Redis; messages already in this
        process and its local memberships stay, and the next call that needs them starts a
        reader again and re-registers the memberships. Elsewhere there is nothing to close:
        other loops' connections last one call.
        """
        if self._links.at_home() is not None:
            await self._send_queued()
            await self._links.aclose()

    async def _send_queued(self) -> None:
        """Wait for queued group sends (up to ``retry_timeout`` plus a second), then give up
        on the rest, which the flusher counts in ``stats.lost`` and logs."""
        flusher = self._flusher
        if flusher is not None and flusher.get_loop() is asyncio.get_running_loop():
            try:
                await asyncio.wait_for(self._settled(), self.retry_timeout + 1)
            except TimeoutError:
                self._abandon = True
                flusher.cancel()
                await asyncio.gather(flusher, return_exceptions=True)
            finally:
                self._abandon = False

    # -- reader and keeper --------------------------------------------------------------------

    async def _start_reader(self) -> None:
        """Start the inbox reader and the keeper on the home loop (once)."""
        home = self._links.home
        loop = asyncio.get_running_loop()
        if home is not None and home.loop is not loop and not home.loop.is_closed():
            if home.reader is None:  # called from another thread's loop: start it at home
                start = asyncio.run_coroutine_threadsafe(self._start_reader(), home.loop)
                await asyncio.wait_for(asyncio.wrap_future(start), self.retry_timeout + 5)
            return
        connections, _ = await self._links.here()
        if not isinstance(connections, Home) or connections.reader is not None:
            return
        home = connections
        alive = self.keys.alive(self.pid)
        announce = ("SET", alive, b"1", "PX", int(self.process_timeout * 1000))
        try:  # alive before any of our channels can join a group
            await home.pipelines[self._own_shard].run([announce])
        except RETRYABLE as exc:  # the reader says it once Redis is back; consumers go on
            logger.warning("Redis layer cannot reach Redis yet, carrying on: %s", exc)
        if home.reader is not None or self._links.home is not home:
            return  # another call started it meanwhile, or the layer was closed
        home.alive = (self._own_shard, alive)
        home.farewell = self._farewell
        home.keeper = Keeper(self._beat, self.refresh_interval)
        reader = self._reader
        if reader is None:
            reader = self._reader = InboxReader(
                pid=self.pid,
                inbox=self.keys.inbox(self.pid),
                count_key=self.keys.count(self.pid),
                ttl_ms=self._expiry_ms,
                control=home.pipelines[self._own_shard],
                local=self.local,
                codec=self.codec,
                token_ttl=self._token_ttl,
                stats=self.stats,
                report_group_full=self.report_group_full,
                log_lines=self.log_lines,
                tasks=home.tasks,
                own=self._own,
                on_reconnect=self._reconnected,
                announce=announce,
                epoch=(
                    functools.partial(self._epochs.command, self._own_shard)
                    if self._epochs.enabled
                    else None
                ),
                on_epoch=functools.partial(self._epochs.saw, self._own_shard),
                epoch_every=EPOCH_EVERY,
            )
        else:
            # A new home loop (the last one ended): the same reader, so the batch it had not
            # acknowledged, the capacity it owes, its overflow and its acknowledgement ids
            # (which Redis only accepts growing) carry over.
            reader.attach(home.pipelines[self._own_shard], home.tasks)
        home.reader = reader
        home.reader_task = loop.create_task(
            home.reader.run(), name=f"redis-layer-reader-{self.pid}"
        )
        home.keeper_task = loop.create_task(
            home.keeper.run(), name=f"redis-layer-keeper-{self.pid}"
        )
        if self._epochs.enabled and len(self.hosts) > 1:
            home.watcher_task = loop.create_task(
                Keeper(self._look_at_epochs, EPOCH_LOOK).run(),
                name=f"redis-layer-epochs-{self.pid}",
            )

    def _farewell(self) -> dict[int, list[Command]]:
        """Per shard, what takes this process out of its groups (``@pid``) as it stops."""
        batches: dict[int, list[Command]] = {}
        for group in self.local.group_names():
            batches.setdefault(self._links.shard_of(group), []).append(
                ("ZREM", self.keys.group(group), self._own_member)
            )
        return batches

    def _reconnected(self) -> None:
        """The reader got its connection back: Redis may have restarted empty, so say "alive"
        and re-add this process's memberships now rather than at the next heartbeat."""
        home = self._links.home
        if home is not None and home.keeper is not None:
            home.keeper.wake()

    async def _beat(self) -> None:
        """The keeper's heartbeat: alive key, this process's memberships, overflow sweep.

        One ``ZADD GT @pid`` per group this process has members of (in ``local``, which drops
        a channel's memberships once it has gone unread for ``group_expiry``): ``GT`` renews
        the score and adds it again if Redis lost it (a restart without persistence, a
        failover, or a ``group_send`` that found this process silent for
        ``process_timeout``), so a live process is back in its groups within one beat.
        """
        home = self._links.home
        if home is None:
            return
        if home.reader is not None:
            home.reader.sweep()
        self.local.sweep()
        alive = ("SET", self.keys.alive(self.pid), b"1", "PX", int(self.process_timeout * 1000))
        batches: dict[int, list[Command]] = {self._own_shard: [alive]}
        score = _now_ms() + self._hold_ms
        renewed = self.local.group_names()
        for group in renewed:
            batches.setdefault(self._links.shard_of(group), []).append(
                scripts.GROUP_ADD.command(
                    (self.keys.group(group),), self._group_expiry_ms, "GT", score, self._own_member
                )
            )
        indexes = list(batches)
        if self._epochs.enabled:  # first: what follows is written in the epoch it says
            for index in indexes:
                batches[index].insert(0, self._epochs.command(index))
        results = await asyncio.gather(*(home.pipelines[i].run(batches[i]) for i in indexes))
        for replies in results:
            for reply in replies:
                if isinstance(reply, Exception):
                    raise reply
        if self._epochs.enabled:
            for index, replies in zip(indexes, results, strict=True):
                self._epochs.saw(index, replies[0])
            self._epochs.beaten({i: self._epochs.known[i] for i in indexes})
        for group in renewed:
            if not self.local.members(group):
                # Its last member left during the beat: that group_discard's ZREM may have
                # reached Redis before the beat's ZADD put this process back. Take it out
                # again (group_discard puts it back if a member joins meanwhile).
                await self._links.call(
                    self._links.shard_of(group),
                    ("ZREM", self.keys.group(group), self._own_member),
                    "group_discard",
                    group,
                )
                if self.local.members(group):
                    await self._add_member(group, self._own_member, _now_ms() + self._hold_ms)

    def __repr__(self) -> str:
        hosts = ", ".join(self._links.identities)
        return f"<RedisChannelLayer prefix={self.prefix!r} hosts=[{hosts}] pid={self.pid}>"


def _history_bound(group: str) -> bytes:
    """What an encrypted history payload authenticates: that it belongs to ``group``'s log
    (a name holds no space, so this never equals a channel's or a group send's)."""
    return b"history " + group.encode()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _now_ms() -> int:
    return int(time.time() * 1000)


__all__ = ["RedisChannelLayer"]
