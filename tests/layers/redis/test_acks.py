"""The reader's reliable read as Redis runs it: TAKE and ACK, each run twice as a retry would."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from channelworks.layers.redis import scripts

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


async def take(redis: Any, batch: int) -> object:
    """TAKE as the reader sends it (plain commands); its last reply is the batch."""
    inbox, count = redis.keys_under_test
    replies = [await run(redis, c) for c in scripts.take_commands(inbox, count, 512, batch, 60_000)]
    return replies[-1]


def ack(redis: Any, batch: int | str, size: int, decrement_id: int, *pairs: object) -> Any:
    inbox, count = redis.keys_under_test
    command = scripts.ACK.command((count, inbox), batch, size, decrement_id, 60_000, *pairs)  # type: ignore[arg-type]
    return run(redis, command)


async def test_a_batch_whose_reply_was_lost_is_handed_out_again(redis: Redis) -> None:
    inbox, _ = redis.keys_under_test  # type: ignore[attr-defined]
    await redis.rpush(inbox, b"e1", b"e2")
    assert await take(redis, 1) == [b"e1", b"e2"]  # delivered
    await redis.rpush(inbox, b"e3")
    await ack(redis, 1, 2, 0)
    assert await take(redis, 2) == [b"e3"]  # ...and this reply is lost
    # the retried write: the ACK of batch 1 finds batch 2 handed out and leaves it
    await ack(redis, 1, 2, 0)
    assert await take(redis, 3) == [b"e3"]  # handed out again, nothing lost
    await ack(redis, 3, 1, 0)
    assert await take(redis, 4) == []


async def test_decrements_apply_once_however_often_they_are_sent(redis: Redis) -> None:
    _, count = redis.keys_under_test  # type: ignore[attr-defined]
    await redis.hset(count, "c.p!1", 5)
    for _ in range(3):  # a write that broke after Redis ran it, retried twice
        await ack(redis, "", 0, 1, "c.p!1", 2)
    assert await redis.hget(count, "c.p!1") == b"3"
    await ack(redis, "", 0, 2, "c.p!1", 3)
    assert await redis.hget(count, "c.p!1") is None  # at zero the field goes


async def test_an_ack_removes_its_batch_only(redis: Redis) -> None:
    # Entries pushed after the batch was handed out stay for the next TAKE: they were never
    # delivered.
    inbox, _ = redis.keys_under_test  # type: ignore[attr-defined]
    await redis.rpush(inbox, b"e1", b"e2")
    assert await take(redis, 1) == [b"e1", b"e2"]
    await redis.rpush(inbox, b"e3")
    await ack(redis, 1, 2, 0)
    assert await take(redis, 2) == [b"e3"]


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


async def test_take_keeps_what_it_hands_out_alive(redis: Redis) -> None:
    inbox, count = redis.keys_under_test  # type: ignore[attr-defined]
    await redis.rpush(inbox, b"e1")
    assert await take(redis, 1) == [b"e1"]
    assert 0 < await redis.pttl(inbox) <= 60_000
    assert 0 < await redis.pttl(count) <= 60_000  # the batch tag never outlives the process
    assert await redis.hget(count, "#batch") == b"1"
