"""Group history on the Redis layer: what the contract suite cannot see (keys, TTL, trimming,
two layers sharing one log, encryption, entries lost or undecodable, a restart without
persistence). docs/redis.md "History"."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from channelworks.exceptions import Unrecoverable
from channelworks.layers.history import POSITION_KEY, StreamPosition
from channelworks.layers.redis import RedisChannelLayer, RedisUnavailable
from tests.layers.redis.conftest import MakeRedisLayer
from tests.layers.redis.servers import redis_server
from tests.layers.redis.test_processes import peer

HISTORY: dict[str, Any] = {"chat.*": {"size": 10, "ttl": 60}}


async def test_two_layers_share_one_log_and_members_elsewhere_get_positions(
    make_redis_layer: MakeRedisLayer,
) -> None:
    sender, other = make_redis_layer(history=HISTORY), make_redis_layer(history=HISTORY)
    channel = await other.new_channel()
    await other.group_add("chat.room", channel)
    sent = [await sender.group_send("chat.room", {"type": "t", "n": n}) for n in range(3)]
    got = [await asyncio.wait_for(other.receive(channel), 3) for _ in range(3)]
    assert [StreamPosition.of(m) for m in got] == sent
    assert [m["n"] for m in got] == [0, 1, 2]
    first = sent[0]
    assert first is not None
    read = await other.history("chat.room", since=StreamPosition(0, first.epoch))
    assert read.messages == got
    assert read.position == sent[-1]


async def test_log_keys_have_the_ttl_and_are_trimmed_near_size(
    make_redis_layer: MakeRedisLayer, redis_url: str
) -> None:
    layer = make_redis_layer(history=HISTORY)
    for n in range(500):
        await layer.group_send("chat.big", {"type": "t", "n": n})
    client = Redis.from_url(redis_url)
    try:
        stream, meta = layer.keys.history("chat.big"), layer.keys.history_meta("chat.big")
        assert 10 <= await client.xlen(stream) <= 110  # MAXLEN ~ 10: whole nodes of 100
        assert 0 < await client.pttl(stream) <= 60_000
        assert 0 < await client.pttl(meta) <= 60_000
        assert await client.hget(meta, "top") == b"500"
    finally:
        await client.aclose()


async def test_a_hole_in_the_stream_is_unrecoverable_not_partial(
    make_redis_layer: MakeRedisLayer, redis_url: str
) -> None:
    layer = make_redis_layer(history=HISTORY)
    sent = [await layer.group_send("chat.holed", {"type": "t", "n": n}) for n in range(5)]
    client = Redis.from_url(redis_url)
    try:
        await client.xdel(layer.keys.history("chat.holed"), "3-0")
    finally:
        await client.aclose()
    start = sent[0]
    assert start is not None
    with pytest.raises(Unrecoverable, match="gap"):
        await layer.history("chat.holed", since=start)
    assert len((await layer.history("chat.holed", since=sent[2])).messages) == 2


async def test_encrypted_log_reads_back_and_a_foreign_key_is_unrecoverable(
    make_redis_layer: MakeRedisLayer, redis_url: str
) -> None:
    writer = make_redis_layer(history=HISTORY, symmetric_encryption_keys=["one"])
    sent = await writer.group_send("chat.secret", {"type": "t", "text": "plain words"})
    assert sent is not None
    since = StreamPosition(0, sent.epoch)
    (message,) = (await writer.history("chat.secret", since=since)).messages
    assert message == {"type": "t", "text": "plain words", POSITION_KEY: [1, sent.epoch]}
    client = Redis.from_url(redis_url)
    try:
        entries: Any = await client.xrange(writer.keys.history("chat.secret"))
        assert b"plain words" not in entries[0][1][b"m"]
    finally:
        await client.aclose()
    stranger = make_redis_layer(history=HISTORY, symmetric_encryption_keys=["two"])
    with pytest.raises(Unrecoverable, match="cannot be decoded"):
        await stranger.history("chat.secret", since=since)
    assert stranger.stats.undecodable == 1


async def test_redis_restarted_empty_makes_history_unrecoverable(tmp_path: Path) -> None:
    with redis_server(tmp_path) as server:
        layer = RedisChannelLayer(hosts=[server.url], retry_timeout=0.3, history=HISTORY)
        try:
            for n in range(5):
                before = await layer.group_send("chat.room", {"type": "t", "n": n})
            assert before is not None
            await asyncio.to_thread(server.stop)
            await asyncio.to_thread(server.start)  # no persistence: the log is gone
            for _ in range(50):
                try:
                    after = await layer.group_send("chat.room", {"type": "t", "n": 5})
                    break
                except RedisUnavailable:
                    await asyncio.sleep(0.1)
            else:
                raise AssertionError("Redis did not come back")
            assert after is not None
            assert after.offset == 1
            assert after.epoch != before.epoch
            for since in (before, StreamPosition(0, before.epoch)):
                with pytest.raises(Unrecoverable, match="another epoch") as info:
                    await layer.history("chat.room", since=since)
                assert info.value.position == after
        finally:
            await layer.flush()
            await layer.close()


async def test_two_processes_appending_at_once_share_one_gapless_log(
    make_redis_layer: MakeRedisLayer, redis_url: str, prefix: str
) -> None:
    layer = make_redis_layer()
    mine = await layer.new_channel()
    await layer.group_add("chat.shared", mine)
    count = 30
    async with peer(redis_url, prefix, "nobody") as other:
        await layer.send(
            other.channel,
            {"type": "history.burst", "group": "chat.shared", "count": count, "reply_to": mine},
        )
        here = []
        for n in range(count):  # at the same time as the other process
            logged = {"type": "room.logged", "n": n, "by": "here"}
            here.append(await layer.group_send("chat.shared", logged, history=True))
        got = [await asyncio.wait_for(layer.receive(mine), 5) for _ in range(2 * count + 1)]
        await layer.send(other.channel, {"type": "stop"})
    (sent,) = [m for m in got if m["type"] == "sent"]
    theirs = [StreamPosition.parse(p) for p in sent["positions"]]
    ours = [p for p in here if p is not None]
    offsets = sorted(p.offset for p in theirs + ours)
    assert offsets == list(range(1, 2 * count + 1))  # every offset once: no gap, no twin
    assert len({p.epoch for p in theirs + ours}) == 1
    live = [m for m in got if m["type"] == "room.logged"]
    assert sorted(StreamPosition.of(m) or (0, "") for m in live) == sorted(theirs + ours)
    # each sender's messages arrive in its offset order
    for by in ("here", "peer"):
        from_one = [StreamPosition.of(m) for m in live if m["by"] == by]
        assert from_one == sorted(from_one, key=lambda p: p.offset if p else 0)
    read = await layer.history("chat.shared", since=StreamPosition(0, ours[0].epoch), limit=100)
    assert [StreamPosition.of(m) for m in read.messages] == sorted(theirs + ours)
    assert sorted(read.messages, key=lambda m: (m["by"], m["n"])) == sorted(
        live, key=lambda m: (m["by"], m["n"])
    )
