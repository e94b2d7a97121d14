"""Group history on RabbitMQ (history.py): what the shared contract suite cannot show, with
several layers on one broker (each its own connection, as processes of one site).

The contract cases themselves run in ``tests/layers/test_contract_history.py``.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from channelworks.exceptions import Unrecoverable
from channelworks.layers.history import POSITION_KEY, StreamPosition
from channelworks.layers.rabbitmq import RabbitMQChannelLayer
from channelworks.layers.rabbitmq import history as history_module
from channelworks.layers.rabbitmq.history import EPOCH, RECORD, _Log
from tests.layers.backends import require_service
from tests.layers.rabbitmq.conftest import MakeLayer
from tests.layers.rabbitmq.test_faults import close_connection_of, delete_queue, eventually

pytestmark = pytest.mark.services

#: the checkout, where ``python -m tests...`` finds the peer
ROOT = Path(__file__).resolve().parents[3]


async def receive(layer: RabbitMQChannelLayer, channel: str) -> dict[str, Any]:
    return await asyncio.wait_for(layer.receive(channel), 5)


async def test_processes_appending_at_once_share_one_numbering(make: MakeLayer) -> None:
    """Three processes write one new log at once, each 30 messages: one epoch (the log was
    made once, whoever came first), every offset from 1 to 90 given once, each writer's
    offsets in its send order, and history() holds exactly what the members got."""
    writers = [make() for _ in range(3)]
    member = make()
    channel = await member.new_channel()
    await member.group_add("room", channel)

    async def write(index: int, layer: RabbitMQChannelLayer) -> list[StreamPosition]:
        got = []
        for n in range(30):
            position = await layer.group_send(
                "room", {"type": "t", "w": index, "n": n}, history=True
            )
            assert position is not None
            got.append(position)
        return got

    written = await asyncio.gather(*(write(i, layer) for i, layer in enumerate(writers)))
    # made once, without a connection closed by the broker (concurrent stream declarations)
    assert [w.stats.reconnects for w in writers] == [0, 0, 0]
    epochs = {p.epoch for positions in written for p in positions}
    assert len(epochs) == 1
    offsets = sorted(p.offset for positions in written for p in positions)
    assert offsets == list(range(1, 91))
    for positions in written:
        assert [p.offset for p in positions] == sorted(p.offset for p in positions)
    live = [await receive(member, channel) for _ in range(90)]
    by_offset = {m[POSITION_KEY][0]: (m["w"], m["n"]) for m in live}
    assert sorted(by_offset) == offsets
    (epoch,) = epochs
    result = await member.history("room", since=StreamPosition(0, epoch))
    assert [(m["w"], m["n"]) for m in result.messages] == [by_offset[o] for o in offsets]
    assert result.position == StreamPosition(90, epoch)


async def test_the_log_outlives_the_process_that_wrote_it(make: MakeLayer) -> None:
    """A log lives in RabbitMQ, not in a process: after its writer closed, another process
    reads it from a position the first one returned, and continues its numbering."""
    first = make()
    positions = [
        await first.group_send("log", {"type": "t", "n": n}, history=True) for n in range(4)
    ]
    await first.close()
    second = make()
    result = await second.history("log", since=positions[1])
    assert [m["n"] for m in result.messages] == [2, 3]
    assert result.position == positions[-1]
    after = await second.group_send("log", {"type": "t", "n": 4}, history=True)
    assert positions[-1] is not None
    assert after == StreamPosition(5, positions[-1].epoch)


async def test_a_log_flushed_by_another_process_gets_a_new_epoch(make: MakeLayer) -> None:
    """One process flushes the log (it deletes it); another, which was writing it, is told
    through its consumer's cancellation: its next send starts the new log at offset 1 with
    a new epoch, and the old position is unrecoverable, never read as one of the new log."""
    writer = make()
    flusher = make()
    old = await writer.group_send("g", {"type": "t"}, history=True)
    assert old is not None
    await flusher.history("g")  # the flusher uses the log too: its flush deletes it
    await flusher.flush()
    assert await eventually(lambda: "g" not in writer.logs.logs)
    new = await writer.group_send("g", {"type": "t"}, history=True)
    assert new is not None
    assert new.offset == 1
    assert new.epoch != old.epoch
    with pytest.raises(Unrecoverable):
        await writer.history("g", since=old)


async def test_appends_across_a_closed_connection_keep_their_numbering(make: MakeLayer) -> None:
    """The broker closes the writer's connection between appends: the writer reconnects, its
    log consumer starts again where it was, and the numbering goes on without a gap."""
    require_service("rabbitmqctl", shutil.which("rabbitmqctl") is not None)
    writer = make()
    first = await writer.group_send("g", {"type": "t", "n": 0}, history=True)
    assert first is not None
    await asyncio.to_thread(close_connection_of, writer)
    assert await eventually(lambda: writer.stats.reconnects >= 1)
    later = [await writer.group_send("g", {"type": "t", "n": n}, history=True) for n in range(1, 4)]
    assert [p.offset for p in later if p is not None] == [2, 3, 4]
    result = await writer.history("g", since=StreamPosition(0, first.epoch))
    assert [m["n"] for m in result.messages] == [0, 1, 2, 3]


async def test_concurrent_sends_of_one_process_open_the_log_once(make: MakeLayer) -> None:
    layer = make()
    positions = await asyncio.gather(
        *(layer.group_send("busy", {"type": "t", "n": n}, history=True) for n in range(20))
    )
    assert sorted(p.offset for p in positions if p is not None) == list(range(1, 21))
    assert len(layer.logs.logs["busy"].pending) == 0
    assert len({p.epoch for p in positions if p is not None}) == 1


async def test_a_log_whose_stream_was_deleted_by_hand_starts_again(make: MakeLayer) -> None:
    """The stream is deleted behind the layers' back, its epoch queue left with the old
    token: a process that needs the log waits for an epoch record that cannot come, then
    starts the log's arbitration again (once) and gets a new log, rather than fail forever."""
    first = make(retry_timeout=1)
    old = await first.group_send("g", {"type": "t"}, history=True)
    assert old is not None
    await delete_queue(first.logs._stream("g"))
    second = make(retry_timeout=1)
    new = await second.group_send("g", {"type": "t"}, history=True)
    assert new is not None
    assert new.offset == 1
    assert new.epoch != old.epoch


async def start_peer(prefix: str, group: str, count: int) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.layers.rabbitmq.history_peer",
        prefix,
        group,
        str(count),
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )


async def peer_positions(peer: asyncio.subprocess.Process, until: int) -> list[StreamPosition]:
    """Positions the peer printed, until it printed ``until`` of them or ``done``."""
    assert peer.stdout is not None
    found: list[StreamPosition] = []
    while len(found) < until:
        line = (await asyncio.wait_for(peer.stdout.readline(), 30)).decode().split()
        if not line or line == ["done"]:
            break
        found.append(StreamPosition(int(line[0]), line[1]))
    return found


async def test_two_os_processes_write_one_log(make: MakeLayer, prefix: str) -> None:
    """Another OS process and this one append to one log at once: one epoch, every offset
    once, each process's in its send order, and history() holds both, in offset order."""
    layer = make()
    peer = await start_peer(prefix, "room", 40)
    try:
        mine = [
            await layer.group_send("room", {"type": "t", "by": "me", "n": n}, history=True)
            for n in range(40)
        ]
        theirs = await peer_positions(peer, 40)
        assert await asyncio.wait_for(peer.wait(), 30) == 0
    finally:
        if peer.returncode is None:
            peer.kill()
            await peer.wait()
    positions = [p for p in mine if p is not None] + theirs
    assert len({p.epoch for p in positions}) == 1
    assert sorted(p.offset for p in positions) == list(range(1, 81))
    for own in (mine, theirs):
        offsets = [p.offset for p in own if p is not None]
        assert offsets == sorted(offsets)
    result = await layer.history("room", since=StreamPosition(0, positions[0].epoch), limit=100)
    by_offset = {p.offset: ("me", n) for n, p in enumerate(mine) if p is not None}
    by_offset.update({p.offset: ("peer", n) for n, p in enumerate(theirs)})
    assert [(m["by"], m["n"]) for m in result.messages] == [by_offset[o] for o in range(1, 81)]


async def test_a_writer_killed_mid_burst_leaves_a_whole_log(make: MakeLayer, prefix: str) -> None:
    """The writing process is killed (SIGKILL) while it appends: the log, kept by RabbitMQ,
    stays whole; this process continues its numbering and reads every record, no gap."""
    layer = make()
    peer = await start_peer(prefix, "room", 0)
    try:
        seen = await peer_positions(peer, 10)
        assert len(seen) == 10
    finally:
        peer.kill()
        await peer.wait()
    after = await layer.group_send("room", {"type": "t", "by": "me", "n": 0}, history=True)
    assert after is not None
    assert after.epoch == seen[0].epoch
    assert after.offset > seen[-1].offset
    result = await layer.history("room", since=StreamPosition(0, after.epoch), limit=100_000)
    assert [StreamPosition.of(m) for m in result.messages][-1] == after
    assert [m["n"] for m in result.messages if m["by"] == "peer"] == list(range(after.offset - 1))


def payloads(log: _Log, start: int, top: int) -> list[int] | None:
    kept = log.kept(start, top)
    return None if kept is None else [offset for offset, _ in kept]


def test_a_log_keeps_the_records_its_consumer_saw_without_a_hole() -> None:
    """The last records seen are kept, each from ``cover`` on, within the log's size; a
    resume inside them is read in memory, any other from the stream."""
    log = _Log(keep=3)
    log.saw(0, EPOCH, b"")
    for offset in range(1, 6):
        log.saw(offset, RECORD, b"m%d" % offset)
    assert payloads(log, 3, 5) == [3, 4, 5]
    assert payloads(log, 4, 5) == [4, 5]
    assert payloads(log, 2, 5) is None  # beyond size: evicted
    assert payloads(log, 3, 6) is None  # not seen yet
    log.saw(7, RECORD, b"m7")  # a hole (6 never came here): start again
    assert log.cover == 7
    assert payloads(log, 5, 7) is None
    assert payloads(log, 7, 7) == [7]


def test_records_read_from_the_stream_extend_what_is_kept_backwards() -> None:
    log = _Log(keep=10)
    log.saw(5, RECORD, b"m5")  # the consumer started at the last chunk
    log.read_back([(2, b"m2"), (3, b"m3"), (4, b"m4"), (5, b"m5")])
    assert log.cover == 2
    assert payloads(log, 2, 5) == [2, 3, 4, 5]
    log.read_back([(0, b"x")])  # not adjacent: a hole would follow, nothing kept
    assert log.cover == 2


async def test_a_log_unused_for_a_while_is_no_longer_consumed(
    make: MakeLayer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process consumes only the logs it uses: one unused for ``IDLE`` seconds is dropped
    (its consumer cancelled) at the next use of any log, and opened again when needed."""
    layer = make()
    first = await layer.group_send("old", {"type": "t"}, history=True)
    assert first is not None
    monkeypatch.setattr(history_module, "IDLE", 0.0)
    layer.logs._next_idle_check = 0.0
    await layer.group_send("new", {"type": "t"}, history=True)
    assert "old" not in layer.logs.logs
    result = await layer.history("old", since=StreamPosition(0, first.epoch))
    assert [StreamPosition.of(m) for m in result.messages] == [first]


async def test_an_encrypted_log_is_read_with_the_key_and_refused_without(make: MakeLayer) -> None:
    """Records are sealed for their group's log: a layer with the key reads them, one with
    another key gets ``Unrecoverable`` (counted as undecodable), never a message it made up."""
    writer = make(symmetric_encryption_keys=["a key of this site"])
    sent = [
        await writer.group_send("secret", {"type": "t", "n": n}, history=True) for n in range(3)
    ]
    assert sent[0] is not None
    since = StreamPosition(0, sent[0].epoch)
    reader = make(symmetric_encryption_keys=["a key of this site"])
    assert [m["n"] for m in (await reader.history("secret", since=since)).messages] == [0, 1, 2]
    stranger = make(symmetric_encryption_keys=["another key"])
    with pytest.raises(Unrecoverable):
        await stranger.history("secret", since=since)
    assert stranger.stats.undecodable >= 1


SHORT = {"short.*": {"size": 10, "ttl": 1}}


async def test_a_log_past_its_ttl_is_deleted_by_the_sweep(make: MakeLayer) -> None:
    """RabbitMQ never deletes a stream by itself: the sweep deletes a log whose newest record
    is older than its ttl (a later use gets a new log, the old position is unrecoverable)
    and keeps one that is younger."""
    layer = make(history=SHORT | {"long.*": {"size": 10, "ttl": 60}})
    old = await layer.group_send("short.a", {"type": "t"})
    kept = await layer.group_send("long.a", {"type": "t"})
    assert old is not None
    assert kept is not None
    await asyncio.sleep(1.2)
    await layer.logs.sweep()
    assert "short.a" not in layer.logs.expiring
    with pytest.raises(Unrecoverable):
        await layer.history("short.a", since=old)
    assert (await layer.history("long.a")).position == kept


async def test_a_log_no_longer_consumed_here_still_expires(
    make: MakeLayer, monkeypatch: pytest.MonkeyPatch
) -> None:
    layer = make(history=SHORT)
    old = await layer.group_send("short.a", {"type": "t"})
    assert old is not None
    monkeypatch.setattr(history_module, "IDLE", 0.0)
    layer.logs._next_idle_check = 0.0
    await layer.history("short.b")  # drops short.a from what is consumed here
    assert "short.a" not in layer.logs.logs
    await asyncio.sleep(1.2)
    await layer.logs.sweep()
    assert "short.a" not in layer.logs.expiring
    assert (await layer.history("short.a")).position.epoch != old.epoch


async def test_a_log_another_process_wrote_to_meanwhile_is_kept(make: MakeLayer) -> None:
    sweeper = make(history=SHORT)
    writer = make(history=SHORT)
    first = await sweeper.group_send("short.a", {"type": "t"})
    assert first is not None
    await asyncio.sleep(1.2)
    later = await writer.group_send("short.a", {"type": "t"})
    assert later == StreamPosition(2, first.epoch)
    assert await eventually(lambda: sweeper.logs.logs["short.a"].tail == 2)
    await sweeper.logs.sweep()
    assert (await sweeper.history("short.a", since=first)).position == later
