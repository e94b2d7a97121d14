"""Single-server group sends whose Redis part is queued for a flusher task.

Rules of this file:
- on the home loop of a server (its inbox reader runs there, so the loop lives on), a
  single-server ``group_send`` queues its Redis part (a ``GroupSend``) and returns; one
  flusher task sends what is queued, all of it pipelined in one round trip, and does each
  one's tail in order (``RedisChannelLayer._group_sent``);
- every other operation that could overtake a queued group send first waits until those
  queued before it are done (``_settled``);
- failures are counted and logged, not raised; a group send whose round trip a cancel cut
  short may have run in Redis, so it is not sent again (that could deliver it twice) but
  counted as lost;
- a group send that Redis *held* (it lost its data and the live processes restore their
  memberships: scripts.py EPOCH) pushed nothing: the flusher has this process's state
  restored, waits for the restore window to close, and sends it (and what follows it in the
  queue) again, in order.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from channelworks.layers.base import background_task
from channelworks.layers.redis import scripts
from channelworks.layers.redis.connections import Links
from channelworks.layers.redis.errors import RedisUnavailable
from channelworks.layers.redis.pipeline import RETRYABLE, Pipeline
from channelworks.layers.redis.shard import Command
from channelworks.layers.redis.stats import RedisLayerStats

logger = logging.getLogger("channelworks.layers.redis")

Message = dict[str, Any]

#: queued group sends (see ``GroupSend``) past which ``group_send`` waits for its own to go
MAX_QUEUED = 1000
#: the reply of a queued group send whose round trip (or tail) a cancel cut short: Redis may
#: have run it, so it is not sent again (that could deliver it twice) but counted as lost
CUT = object()
#: why a ``CUT`` group send is counted as lost
CUT_REASON = (
    "a cancel (the loop ending) cut its round trip short; not sent again, as Redis may have run it"
)


@dataclass(slots=True)
class GroupSend:
    """A single-server ``group_send`` whose Redis part waits in the layer's queue."""

    ticket: int  # its place in the queue: the layer's ``_done`` reaches it once it is done
    group: str
    message: Message
    payload: bytes
    expires: int
    now: int
    seq: int
    command: Command  # the GROUP_SEND script call
    own: bool  # the script may push it to this process's own inbox
    reply: Any = None  # the script's reply, once it came


class QueuedGroupSends:
    """The queue and flusher of ``RedisChannelLayer``'s group sends (a mixin: it works on the
    layer's links, stats and queue state, declared below)."""

    _links: Links
    stats: RedisLayerStats
    pid: str
    retry_timeout: float
    _queue: deque[GroupSend]
    _tickets: int  # group sends ever queued
    _done: int  # of those, how many are done (sent, or counted and logged as lost)
    _own_queued: int  # queued ones that may push to this process's own inbox
    _waiters: deque[tuple[int, asyncio.Future[None]]]
    _flusher: asyncio.Task[None] | None
    _abandon: bool  # close() gave up waiting: the flusher stops when cancelled
    #: what follows a GROUP_SEND's reply (the layer's: normal-channel members, reports)
    _group_sent: Callable[[str, Message, bytes, int, int, int, Any], Awaitable[None]]
    #: a GROUP_SEND was held: restore this process's state, wait out the restore window
    _held: Callable[[Any], Awaitable[None]]
    #: a GROUP_SEND command with the epoch this process knows now
    _rearm: Callable[[Command], Command]

    def _queuing_loop(self) -> asyncio.AbstractEventLoop | None:
        """The running loop if a group send may leave its Redis part to the flusher: it is the
        home loop and its inbox reader runs (a server's loop, not a short-lived
        ``async_to_sync`` one)."""
        home = self._links.home
        if home is None:
            return None
        loop = asyncio.get_running_loop()
        if home.loop is not loop:
            return None
        task = home.reader_task
        return loop if task is not None and not task.done() else None

    def _start_flusher(self) -> None:
        home = self._links.home
        assert home is not None
        self._flusher = task = home.loop.create_task(
            self._flush_queue(home.pipelines[0]), name=f"redis-layer-group-sends-{self.pid}"
        )
        home.tasks.add(task)  # so the home loop's connections close after it
        task.add_done_callback(home.tasks.discard)
        task.add_done_callback(self._flusher_ended)

    def _flusher_ended(self, task: asyncio.Task[None]) -> None:
        """``_flush_queue`` cleans up as it ends, unless it was cancelled before it started
        (a loop's last iteration): then nothing it was to send may stay queued, waited for."""
        if self._flusher is task:
            self._flusher = None
            self._drop_queued()

    async def _settled(self, ticket: int | None = None) -> None:
        """Wait until the group sends queued so far (or up to ``ticket``) are done.

        Only on the flusher's loop: a call from another loop has queued nothing.
        """
        flusher = self._flusher
        if flusher is None or flusher.get_loop() is not asyncio.get_running_loop():
            return
        target = self._tickets if ticket is None else ticket
        if self._done >= target:
            return
        future = asyncio.get_running_loop().create_future()
        self._waiters.append((target, future))
        await future

    def _wake(self) -> None:
        while self._waiters and self._waiters[0][0] <= self._done:
            _, future = self._waiters.popleft()
            # (a waiter on a loop closed under it is past waking: setting it would raise)
            if not future.done() and not future.get_loop().is_closed():
                future.set_result(None)

    @background_task
    async def _flush_queue(self, pipeline: Pipeline) -> None:
        """The flusher: send the queued group sends until the queue is empty.

        A cancel comes when the loop ends (``asyncio.run`` and asgiref cancel every task
        before closing it): the flusher then goes on for up to ``retry_timeout`` (plus a
        second) to send what is queued, unless ``close()`` gave up on it. What it could not
        send is counted and logged.
        """
        loop = asyncio.get_running_loop()
        me = asyncio.current_task()
        deadline: float | None = None
        cancelled = False
        try:
            while True:
                try:
                    if deadline is None:
                        await self._drain(pipeline)
                    else:
                        async with asyncio.timeout_at(deadline):
                            await self._drain(pipeline)
                    break
                except asyncio.CancelledError:
                    task = asyncio.current_task()
                    if cancelled or self._abandon or task is None:
                        raise
                    cancelled = True
                    task.uncancel()
                    deadline = loop.time() + self.retry_timeout + 1
                except TimeoutError:
                    break
        finally:
            # Unless a group_send found it stale (its loop ended under it; this may run when
            # the garbage collector closes it) and a newer flusher owns the queue now.
            if self._flusher is me:
                self._flusher = None
                self._drop_queued()
        if cancelled:
            raise asyncio.CancelledError

    async def _drain(self, pipeline: Pipeline) -> None:
        queue = self._queue
        while queue:
            batch = list(itertools.islice(queue, pipeline.max_batch))
            # Those with a reply already (a cancel cut their tail short) come first.
            sent = next((i for i, pending in enumerate(batch) if pending.reply is None), None)
            if sent is not None:
                unsent = batch[sent:]
                for pending in unsent:
                    pending.command = self._rearm(pending.command)
                try:
                    replies = await pipeline.run([pending.command for pending in unsent])
                except RETRYABLE as exc:
                    await self._finish(batch[:sent])
                    self._lose(unsent, exc, counter="redis_errors")
                    continue
                except Exception as exc:  # a bug, not Redis: count and log, keep flushing
                    if self._flusher is not asyncio.current_task():
                        raise  # a stale flusher (its loop is gone): the queue is not its own
                    await self._finish(batch[:sent])
                    self._lose(unsent, exc, counter="lost")
                    continue
                except asyncio.CancelledError:
                    # Most likely after the write: Redis runs them all the same. Sending
                    # them again once the flusher goes on would deliver them twice.
                    for pending in unsent:
                        pending.reply = CUT
                    raise
                for pending, reply in zip(unsent, replies, strict=True):
                    pending.reply = reply
                held = next((i for i, p in enumerate(unsent) if scripts.held(p.reply)), None)
                if held is not None:
                    # Nothing of it was pushed. Those after it go again with it, in order
                    # (one that ran at the very instant the window closed is then delivered
                    # twice: at least once, never zero times unseen).
                    hold = unsent[held].reply
                    for pending in unsent[held:]:
                        pending.reply = None
                    await self._finish(batch[: sent + held])
                    await self._held(hold)
                    continue
            await self._finish(batch)

    async def _finish(self, batch: list[GroupSend]) -> None:
        """Each queued group send's tail, in order, once its GROUP_SEND reply came."""
        cut: list[GroupSend] = []
        for pending in batch:
            reply = pending.reply
            if reply is CUT:
                cut.append(pending)
                continue
            if cut:
                self._lose(cut, CUT_REASON, counter="lost")
                cut = []
            try:
                if isinstance(reply, BaseException):
                    raise reply
                try:
                    await self._group_sent(
                        pending.group,
                        pending.message,
                        pending.payload,
                        pending.expires,
                        pending.now,
                        pending.seq,
                        reply,
                    )
                except asyncio.CancelledError:
                    pending.reply = CUT  # its sends to normal channels may have run
                    raise
            except RedisUnavailable:  # counted and logged (with the group) already
                self._forget(pending)
            except Exception as exc:
                self._lose([pending], exc, counter="lost")
            else:
                self._forget(pending)
        if cut:
            self._lose(cut, CUT_REASON, counter="lost")

    def _forget(self, pending: GroupSend) -> None:
        """``pending`` (at the head of the queue) is done."""
        head = self._queue.popleft()
        assert head is pending
        self._own_queued -= pending.own
        self._done = pending.ticket
        self._wake()

    def _lose(self, lost: list[GroupSend], error: object, *, counter: str) -> None:
        """Count and log the queued group sends ``lost`` (at the head of the queue)."""
        setattr(self.stats, counter, getattr(self.stats, counter) + len(lost))
        groups = sorted({pending.group for pending in lost})
        logger.error(
            "Redis layer: %d queued group_send(s) to %s may not have reached Redis (members in "
            "other processes and normal-channel members may not get them): %s",
            len(lost),
            ", ".join(map(repr, groups[:10])) + (" …" if len(groups) > 10 else ""),
            error,
        )
        for pending in lost:
            self._forget(pending)

    def _drop_queued(self) -> None:
        """The flusher stopped: count and log what it left (nothing, unless cut short)."""
        if self._queue:
            self._lose(list(self._queue), "the layer closed or its loop ended", counter="lost")
        self._done = self._tickets
        self._own_queued = 0
        self._wake()


__all__ = ["CUT", "CUT_REASON", "MAX_QUEUED", "GroupSend", "QueuedGroupSends"]
