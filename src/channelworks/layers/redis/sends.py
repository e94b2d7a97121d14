"""Sends to process-local channels of other processes (and of this one, through its inbox).

Rules of this file:
- on the home loop, the sends to one process made in one event-loop iteration go to Redis as
  one ``SEND_LOCAL`` call (scripts.py): a ``SendBatch`` holds a ``Run`` of entries per channel,
  in call order, and each caller awaits its own entry's outcome (see ``LocalSends``);
- an entry reaches this file already packed for the wire (``pack_arg``), so building the call
  is a join;
- a process that is not alive drops every entry sent to it: counted in
  ``stats.dead_process`` and logged once per process, not raised (like a channel nobody reads).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass, field
from typing import Any

from channelworks.layers.redis import scripts
from channelworks.layers.redis.connections import Home, Links
from channelworks.layers.redis.keys import Keyspace
from channelworks.layers.redis.pipeline import RETRYABLE, Pipeline
from channelworks.layers.redis.reader import OwnPushes
from channelworks.layers.redis.shard import Command, Packed
from channelworks.layers.redis.stats import RedisLayerStats

logger = logging.getLogger("channelworks.layers.redis")

#: entries, and bytes, past which a batch of sends to one process goes at once (``SendBatch``)
MAX_SEND_BATCH = 1000
MAX_SEND_BATCH_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Target:
    """What a send to one process-local channel needs, worked out once per channel name."""

    pid: str  # the process that owns it
    name: bytes  # the name, encoded
    capacity: int
    head: bytes  # its first two SEND_LOCAL arguments (name, capacity), packed (pack_head)
    own: bool  # one of this layer's own channels


@dataclass(slots=True)
class Run:
    """The sends to one channel in a ``SendBatch``, in call order."""

    channel: str
    head: bytes  # the channel's name and capacity, packed (``Target.head``)
    futures: list[asyncio.Future[int]] = field(default_factory=list)  # each caller's outcome
    seqs: list[int] = field(default_factory=list)
    entries: list[bytes] = field(default_factory=list)  # each entry, packed (``pack_arg``)


@dataclass(slots=True)
class SendBatch:
    """Sends to one process's channels made in one loop iteration, for one SEND_LOCAL call:
    one ``Run`` per channel, in the order each channel was first sent to."""

    home: Home
    pid: str
    runs: dict[str, Run] = field(default_factory=dict)
    count: int = 0  # entries
    size: int = 0  # bytes of the entries

    def discard_cancelled(self) -> None:
        """Leave out the sends whose caller cancelled before the batch went."""
        for channel, run in list(self.runs.items()):
            if any(future.done() for future in run.futures):
                kept = [i for i, future in enumerate(run.futures) if not future.done()]
                if not kept:
                    del self.runs[channel]
                    continue
                run.futures = [run.futures[i] for i in kept]
                run.seqs = [run.seqs[i] for i in kept]
                run.entries = [run.entries[i] for i in kept]


class LocalSends:
    """The batching of ``RedisChannelLayer``'s sends to process-local channels (a mixin: it
    works on the layer's own links, keys, stats and bookkeeping, declared below)."""

    _links: Links
    keys: Keyspace
    stats: RedisLayerStats
    pid: str
    _expiry_ms: int
    _own: OwnPushes
    _dead_logged: set[str]

    # On the home loop, the sends to one process's channels made in one event-loop iteration
    # go to Redis together, as one SEND_LOCAL call. The first of them (the leader) opens a
    # ``SendBatch`` and yields once; the others join it meanwhile (unless no other send is
    # under way: then it most likely is alone and goes at once, without the yield, as a
    # batch of one). Then the leader runs it:
    # alone, inline, as a single send; with others, queued on the pipeline, and every sender
    # (the leader too) awaits its own entry's outcome. A sender awaits each send, so its next
    # send is in a later batch: order per sender holds, and a batch keeps call order per channel.
    # ``home.sending`` counts the sends whose caller has not yet resumed with its outcome: a
    # sender woken by a batch's reply still counts, so the first of them to send again
    # leads a batch the others join instead of going alone. Batches and that count belong to
    # the home loop's ``Home``: a new home loop starts with none.

    async def _send_alone(self, channel: str, target: Target, entry: bytes, seq: int) -> int:
        """``entry``'s outcome (1 accepted, 0 full, -1 dropped: its process is not alive), in
        a SEND_LOCAL call of its own. Here and below, ``entry`` is packed (``pack_arg``)."""
        pid = target.pid
        self.stats.send_batches += 1  # counted as it goes, like a queued batch
        reply = await self._links.call(
            self._links.shard_of(pid),
            self._send_local(pid, [(target.head, [entry])]),
            "send",
            channel,
        )
        (outcome,) = self._outcomes(pid, [channel], [seq], reply)
        return outcome

    async def _lead(self, home: Home, channel: str, target: Target, entry: bytes, seq: int) -> int:
        """``entry``'s outcome, sent with the other sends to its process made in this loop
        iteration."""
        if not home.sending:  # no other send under way: most likely alone, so no yield
            home.sending += 1
            try:
                return await self._send_alone(channel, target, entry, seq)
            finally:
                home.sending -= 1
        pid = target.pid
        batch = home.batches[pid] = SendBatch(home, pid)
        future = self._join(batch, channel, target, entry, seq)
        try:
            try:
                await asyncio.sleep(0)  # the other sends of this iteration join meanwhile
            except asyncio.CancelledError:
                future.cancel()  # not sent; the others are
                if home.batches.get(pid) is batch:
                    del home.batches[pid]
                    self._submit([batch])
                raise
            if home.batches.get(pid) is batch:
                del home.batches[pid]
                if batch.count == 1:  # alone: one round trip, no task
                    future.cancel()  # unused: the outcome comes back here
                    return await self._send_alone(channel, target, entry, seq)
                self._submit([batch])
            return await future
        finally:
            home.sending -= 1

    def _join(
        self, batch: SendBatch, channel: str, target: Target, entry: bytes, seq: int
    ) -> asyncio.Future[int]:
        """Add ``entry`` to ``batch`` and count it in ``home.sending`` (the caller takes it
        off once it has its outcome); -> the future of its outcome. A full batch goes at once."""
        home = batch.home
        future: asyncio.Future[int] = home.loop.create_future()
        home.sending += 1
        run = batch.runs.get(channel)
        if run is None:
            run = batch.runs[channel] = Run(channel, target.head)
        run.futures.append(future)
        run.seqs.append(seq)
        run.entries.append(entry)
        batch.count += 1
        batch.size += len(entry)
        if batch.count >= MAX_SEND_BATCH or batch.size >= MAX_SEND_BATCH_BYTES:
            if home.batches.get(batch.pid) is batch:
                del home.batches[batch.pid]
            self._submit([batch])
        return future

    def _submit(self, batches: list[SendBatch]) -> None:
        """Queue one SEND_LOCAL call per batch (all of one shard in one round trip)."""
        by_shard: dict[int, list[tuple[SendBatch, Command]]] = {}
        for batch in batches:
            batch.discard_cancelled()
            if not batch.runs:
                continue
            runs = [(run.head, run.entries) for run in batch.runs.values()]
            command = self._send_local(batch.pid, runs)
            by_shard.setdefault(self._links.shard_of(batch.pid), []).append((batch, command))
        for index, items in by_shard.items():
            pipeline = items[0][0].home.pipelines[index]
            futures = pipeline.submit([command for _, command in items])
            self.stats.send_batches += len(items)
            for (batch, _), future in zip(items, futures, strict=True):
                future.add_done_callback(functools.partial(self._batch_sent, batch, pipeline))

    def _batch_sent(self, batch: SendBatch, pipeline: Pipeline, done: asyncio.Future[Any]) -> None:
        """``batch``'s SEND_LOCAL call is done: give each caller its outcome."""
        runs = batch.runs.values()
        if done.cancelled():  # the pipeline closed before sending it
            for run in runs:
                for future in run.futures:
                    future.cancel()
            return
        reply = done.exception() or done.result()
        if isinstance(reply, BaseException):
            for run in runs:
                for future in run.futures:
                    if future.done():
                        continue
                    if isinstance(reply, RETRYABLE):  # counted and logged per send, as alone
                        error = self._links.unavailable("send", run.channel, pipeline, reply)
                        error.__cause__ = reply  # as ``raise ... from`` does for a send alone
                        future.set_exception(error)
                    else:
                        future.set_exception(reply)
            return
        channels: list[str] = []
        seqs: list[int] = []
        futures: list[asyncio.Future[int]] = []
        for run in runs:  # in the order the script answers
            channels += [run.channel] * len(run.seqs)
            seqs += run.seqs
            futures += run.futures
        outcomes = self._outcomes(batch.pid, channels, seqs, reply)
        for future, outcome in zip(futures, outcomes, strict=True):
            if not future.done():
                future.set_result(outcome)

    def _send_local(self, pid: str, runs: list[tuple[bytes, list[bytes]]]) -> Command:
        """The SEND_LOCAL call that pushes entries to ``pid``'s channels: per channel, its
        packed name and capacity (``Target.head``) and its entries (``pack_arg``)."""
        heads = [head + pack_arg(b"%d" % len(entries)) for head, entries in runs]
        count = len(heads) * 3
        for _, entries in runs:
            count += len(entries)
            heads += entries
        return scripts.SEND_LOCAL.command(
            (self.keys.inbox(pid), self.keys.count(pid), self.keys.alive(pid)),
            self._expiry_ms,
            len(runs),
            Packed(count, b"".join(heads)),
        )

    def _outcomes(self, pid: str, channels: list[str], seqs: list[int], reply: Any) -> list[int]:
        """Each entry's outcome from a SEND_LOCAL ``reply`` (1 accepted, 0 full, -1 dropped as
        its process is not alive: counted and logged here)."""
        if isinstance(reply, int):
            # Like a channel nobody reads: the contract lets the message go (it would have
            # expired unread); count it and say so rather than raise.
            self.stats.dead_process += len(channels)
            if pid not in self._dead_logged:  # once per process: every send is counted
                if len(self._dead_logged) >= 1000:
                    self._dead_logged.clear()
                self._dead_logged.add(pid)
                logger.warning(
                    "Redis layer dropped a send to %r: its process %s is not alive (closed, "
                    "dead, or its Redis lost its data and it has not said it is alive again "
                    "yet); further sends to it are counted in stats.dead_process only",
                    channels[0],
                    pid,
                )
            return [-1] * len(channels)
        outcomes = [flag - 48 for flag in reply]  # b"1" accepted, b"0" full
        if pid == self.pid:
            for seq, outcome in zip(seqs, outcomes, strict=True):
                if outcome:
                    self._own.accepted(seq)
        return outcomes


def pack_head(name: bytes, capacity: int) -> bytes:
    """A channel's first two SEND_LOCAL arguments, its name and capacity, packed."""
    return pack_arg(name) + pack_arg(b"%d" % capacity)


def pack_arg(data: bytes) -> bytes:
    """One command argument, packed (RESP: a bulk string)."""
    return b"$%d\r\n%s\r\n" % (len(data), data)


__all__ = [
    "MAX_SEND_BATCH",
    "MAX_SEND_BATCH_BYTES",
    "LocalSends",
    "Run",
    "SendBatch",
    "Target",
    "pack_arg",
    "pack_head",
]
