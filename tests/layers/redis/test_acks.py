"""The reader's reliable pop as Redis runs it: TAKE and ACK, each run twice as a retry would."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from channelworks.layers.redis import scripts

pytestmark = pytest.mark.services

INBOX, PENDING, COUNT = "t:inbox:{p}", "t:pending:{p}", "t:count:{p}"


@pytest.fixture
async def redis(redis_url: str, prefix: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    for script in scripts.ALL:
        await client.script_load(script.source)
    keys = [key.replace("t:", f"{prefix}:") for key in (INBOX, PENDING, COUNT)]
    client.keys_under_test = keys  # type: ignore[attr-defined]
    yield client
    await client.delete(*keys)
    await client.aclose()


async def run(redis: Any, command: tuple[object, ...]) -> object:
    return await redis.execute_command(*command)


def take(keys: list[str], batch: int) -> tuple[object, ...]:
    return scripts.TAKE.command(tuple(keys), 512, batch, 60_000)


def ack(
    keys: list[str], batch: int | str, size: int, decrement_id: int, *pairs: object
) -> tuple[object, ...]:
    _inbox, pending, count = keys
    return scripts.ACK.command((count, pending), batch, size, decrement_id, 60_000, *pairs)  # type: ignore[arg-type]


async def test_a_batch_whose_reply_was_lost_is_handed_out_again(redis: Redis) -> None:
    keys = redis.keys_under_test  # type: ignore[attr-defined]
    await redis.rpush(keys[0], b"e1", b"e2")
    assert await run(redis, take(keys, 1)) == [b"e1", b"e2"]  # delivered
    await redis.rpush(keys[0], b"e3")
    await run(redis, ack(keys, 1, 2, 0))
    assert await run(redis, take(keys, 2)) == [b"e3"]  # ...and this reply is lost
    # the retried write: the ACK of batch 1 finds batch 2 pending and leaves it
    await run(redis, ack(keys, 1, 2, 0))
    assert await run(redis, take(keys, 3)) == [b"e3"]  # handed out again, nothing lost
    await run(redis, ack(keys, 3, 1, 0))
    assert await run(redis, take(keys, 4)) == []


async def test_decrements_apply_once_however_often_they_are_sent(redis: Redis) -> None:
    keys = redis.keys_under_test  # type: ignore[attr-defined]
    await redis.hset(keys[2], "c.p!1", 5)
    for _ in range(3):  # a write that broke after Redis ran it, retried twice
        await run(redis, ack(keys, "", 0, 1, "c.p!1", 2))
    assert await redis.hget(keys[2], "c.p!1") == b"3"
    await run(redis, ack(keys, "", 0, 2, "c.p!1", 3))
    assert await redis.hget(keys[2], "c.p!1") is None  # at zero the field goes


async def test_an_ack_removes_its_batch_only(redis: Redis) -> None:
    # An entry a blocking move added to the pending list after the batch was handed out (a
    # round whose TAKE failed) is not acknowledged with it: it was never delivered.
    keys = redis.keys_under_test  # type: ignore[attr-defined]
    await redis.rpush(keys[0], b"e1", b"e2")
    assert await run(redis, take(keys, 1)) == [b"e1", b"e2"]
    await redis.rpush(keys[0], b"e3")
    await redis.lmove(keys[0], keys[1], "LEFT", "RIGHT")
    await run(redis, ack(keys, 1, 2, 0))
    assert await run(redis, take(keys, 2)) == [b"e3"]
