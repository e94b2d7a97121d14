"""The reader's reliable read as Redis runs it: TAKE and ACK, each run twice as a retry would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from random import Random
from typing import Any

import pytest
from redis.asyncio import Redis

from channelworks.layers.redis import scripts
from tests.layers.redis.conftest import MakeRedisLayer

pytestmark = pytest.mark.services


@pytest.fixture
async def redis(redis_url: str, prefix: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    for script in scripts.ALL:
        await client.script_load(script.source)
    keys = [f"{prefix}:{kind}:{{p}}" for kind in ("inbox", "count")]
    client.keys_under_test = keys  # type: ignore[attr-defined]
    yield client
    await client.delete(*keys)
    await client.aclose()


async def run(redis: Any, command: tuple[object, ...]) -> object:
    return await redis.execute_command(*command)


async def take(redis: Any) -> Any:
    """TAKE as the reader sends it (plain commands); its last reply is the batch."""
    inbox, _ = redis.keys_under_test
    replies = [await run(redis, command) for command in scripts.take_commands(inbox, 512)]
    return replies[-1]


def ack(
    redis: Any, batch: list[bytes], decrement_id: int = 0, *pairs: object, number: int = 1
) -> Any:
    """The ACK of ``batch`` (handed out as batch ``number``) as the reader sends it, numbering
    the next batch ``number + 1``."""
    inbox, count = redis.keys_under_test
    head, newline, _ = batch[-1].partition(b"\n") if batch else (b"", b"", b"")
    command = scripts.ACK.command(
        (count, inbox),
        number if batch else "",
        len(batch),
        head + newline,
        number + 1,
        decrement_id,
        60_000,
        *pairs,  # type: ignore[arg-type]
    )
    return run(redis, command)


def entry(seq: int) -> bytes:
    return b"s 99 pid:%d c.pid!1\npayload" % seq


async def test_a_batch_whose_reply_was_lost_is_handed_out_again(redis: Redis) -> None:
    inbox, _ = redis.keys_under_test  # type: ignore[attr-defined]
    await redis.rpush(inbox, entry(1), entry(2))
    first = await take(redis)
    assert first == [entry(1), entry(2)]  # delivered
    await redis.rpush(inbox, entry(3))
    assert await ack(redis, first) == 1
    assert await take(redis) == [entry(3)]  # ...and this reply is lost
    # the retried write: the ACK of the first batch finds it gone and trims nothing
    assert await ack(redis, first) == 0
    second = await take(redis)
    assert second == [entry(3)]  # handed out again, nothing lost
    assert await ack(redis, second, number=2) == 1
    assert await take(redis) == []


async def test_decrements_apply_once_however_often_they_are_sent(redis: Redis) -> None:
    _, count = redis.keys_under_test  # type: ignore[attr-defined]
    await redis.hset(count, "c.p!1", 5)
    for _ in range(3):  # a write that broke after Redis ran it, retried twice
        await ack(redis, [], 1, "c.p!1", 2)
    assert await redis.hget(count, "c.p!1") == b"3"
    await ack(redis, [], 2, "c.p!1", 3)
    assert await redis.hget(count, "c.p!1") is None  # at zero the field goes


async def test_an_ack_removes_its_batch_only(redis: Redis) -> None:
    # Entries pushed after the batch was handed out stay for the next TAKE: they were never
    # delivered.
    inbox, _ = redis.keys_under_test  # type: ignore[attr-defined]
    await redis.rpush(inbox, entry(1), entry(2))
    batch = await take(redis)
    await redis.rpush(inbox, entry(3))
    await ack(redis, batch)
    assert await take(redis) == [entry(3)]


async def test_an_ack_never_trims_an_inbox_made_anew(redis: Redis) -> None:
    """A flush (or expiry) deleting the inbox between a TAKE and its ACK, and sends filling
    it again: the old ACK must not trim entries that were never delivered."""
    inbox, _ = redis.keys_under_test  # type: ignore[attr-defined]
    await redis.rpush(inbox, entry(1), entry(2))
    batch = await take(redis)
    await redis.delete(inbox)
    await redis.rpush(inbox, entry(3), entry(4), entry(5))
    assert await ack(redis, batch) == 0
    assert await take(redis) == [entry(3), entry(4), entry(5)]


async def test_an_ack_runs_when_redis_is_out_of_memory(redis: Redis) -> None:
    """It only frees: it must run under ``maxmemory`` (noeviction), or a full Redis could
    never be drained by its readers."""
    inbox, count = redis.keys_under_test  # type: ignore[attr-defined]
    await redis.rpush(inbox, entry(1))
    await redis.hset(count, "c.p!1", 1)
    batch = await take(redis)
    before = await redis.config_get("maxmemory")
    await redis.config_set("maxmemory", 1)
    try:
        assert await ack(redis, batch, 1, "c.p!1", 1) == 1
    finally:
        await redis.config_set("maxmemory", before["maxmemory"] or 0)
    assert await redis.llen(inbox) == 0
    assert await redis.hget(count, "c.p!1") is None


async def test_the_wait_leaves_the_inbox_as_it_was(redis: Redis) -> None:
    inbox, _ = redis.keys_under_test  # type: ignore[attr-defined]
    await redis.rpush(inbox, b"e1", b"e2", b"e3")
    for command in scripts.wait_commands(inbox, 0.1):
        assert await run(redis, command) == b"e1"
    assert await redis.lrange(inbox, 0, -1) == [b"e1", b"e2", b"e3"]
    await redis.delete(inbox)
    for command in scripts.wait_commands(inbox, 0.1):  # empty: it waits, then gives up
        assert await run(redis, command) is None
    assert await redis.exists(inbox) == 0


async def test_an_ack_sent_again_trims_nothing_even_if_an_entry_repeats(redis: Redis) -> None:
    """A push retried after a broken connection can land an entry twice (same header): an
    ACK sent again after its reply was lost must not take the repeat for its batch."""
    inbox, _ = redis.keys_under_test  # type: ignore[attr-defined]
    await redis.rpush(inbox, entry(1), entry(2))
    batch = await take(redis)
    assert await ack(redis, batch) == 1  # ...and its reply is lost
    await redis.rpush(inbox, entry(9), entry(2))  # another send, then the retried push
    assert await ack(redis, batch) == 0
    assert await take(redis) == [entry(9), entry(2)]


async def test_an_inbox_reader_cancelled_at_any_point_loses_and_repeats_nothing(
    make_redis_layer: MakeRedisLayer,
) -> None:
    # The reader reads without a task of its own (Popper.read): cancelled half way through a
    # round trip (after Redis ran its ACK, say), it drops the connection; the next reader
    # finds what was read still in Redis, and the ACK it sends again trims nothing twice.
    owner = make_redis_layer(capacity=100_000)
    sender = make_redis_layer(capacity=100_000)
    channel = await owner.new_channel()
    home = owner._links.home
    assert home is not None
    assert home.reader is not None
    assert home.reader_task is not None
    reader = home.reader
    senders, each = 20, 150

    async def send_all(task: int) -> None:
        for n in range(each):
            await sender.send(channel, {"type": "m", "task": task, "n": n})

    def connected() -> bool:  # again: a cut drops the reader's connection
        connection = reader.popper._connection
        return connection is not None and connection.is_connected

    loop = asyncio.get_running_loop()
    sending = asyncio.gather(*(send_all(task) for task in range(senders)))
    random = Random(4)
    cuts = 0
    while not sending.done():
        while not connected():  # noqa: ASYNC110 (polled: nothing to wait on)
            await asyncio.sleep(0)
        await asyncio.sleep(random.uniform(0, 0.0005))  # then any step of a round trip
        cuts += not home.reader_task.done()
        home.reader_task.cancel()
        await asyncio.gather(home.reader_task, return_exceptions=True)
        home.reader_task = loop.create_task(reader.run())
    await sending
    assert cuts > 20
    got: dict[int, list[int]] = {}
    for _ in range(senders * each):
        message = await asyncio.wait_for(owner.receive(channel), 5)
        got.setdefault(message["task"], []).append(message["n"])
    assert got == {task: list(range(each)) for task in range(senders)}
    await asyncio.sleep(0.2)
    assert owner.receive_nowait(channel) is None
