"""Dead processes, lost state and closing: what the layer does and how it says so."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import pytest
import redis.asyncio

from channelworks.exceptions import StopConsumer
from channelworks.layers.redis import LayerClosed
from tests.layers.redis.conftest import MakeRedisLayer

pytestmark = pytest.mark.services


@pytest.fixture
async def client(redis_url: str) -> Any:
    connection = redis.asyncio.Redis.from_url(redis_url)
    yield connection
    await connection.aclose()


async def test_a_send_to_a_closed_process_is_counted_logged_and_leaves_no_inbox(
    make_redis_layer: MakeRedisLayer, client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    owner = make_redis_layer()
    sender = make_redis_layer()
    channel = await owner.new_channel()
    await owner.close()
    with caplog.at_level(logging.WARNING, logger="channelworks.layers.redis"):
        for _ in range(3):
            await sender.send(channel, {"type": "lost"})  # accepted like an unread channel
    assert sender.stats.dead_process == 3
    assert "not alive" in caplog.text
    assert await client.exists(owner.keys.inbox(owner.pid), owner.keys.count(owner.pid)) == 0


async def test_a_heartbeat_that_finds_its_alive_key_gone_re_adds_memberships(
    make_redis_layer: MakeRedisLayer, client: Any
) -> None:
    owner = make_redis_layer(process_timeout=1.5)  # a heartbeat every 0.5 s
    sender = make_redis_layer()
    channel = await owner.new_channel()
    await owner.group_add("room", channel)
    # Redis loses the state without dropping the connection (FLUSHDB, a failover's replica).
    await client.delete(owner.keys.alive(owner.pid), owner.keys.group("room"))
    for _ in range(40):
        await asyncio.sleep(0.1)
        if await client.zscore(owner.keys.group("room"), f"@{owner.pid}") is not None:
            break
    await sender.group_send("room", {"type": "back"})
    assert (await asyncio.wait_for(owner.receive(channel), 2))["type"] == "back"


async def test_group_send_removes_members_of_dead_processes_and_counts_them(
    make_redis_layer: MakeRedisLayer, client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    owner = make_redis_layer()
    other = make_redis_layer()
    live = make_redis_layer()
    channels = [await owner.new_channel() for _ in range(3)]
    kept = await live.new_channel()
    for channel in channels:
        await other.group_add("room", channel)  # added by another process: group_expiry
    await other.group_add("room", kept)
    await owner.close()
    with caplog.at_level(logging.WARNING, logger="channelworks.layers.redis"):
        await other.group_send("room", {"type": "t"})
    assert other.stats.dead_members == 3
    assert "not alive" in caplog.text
    assert await client.zrange(other.keys.group("room"), 0, -1) == [kept.encode()]
    assert (await asyncio.wait_for(live.receive(kept), 2))["type"] == "t"
    await other.group_send("room", {"type": "t"})
    assert other.stats.dead_members == 3  # removed the first time


async def test_close_ends_a_receive_waiting_on_a_normal_channel(
    make_redis_layer: MakeRedisLayer,
) -> None:
    layer = make_redis_layer()
    other = make_redis_layer()
    waiting = asyncio.create_task(layer.receive("work"))
    await asyncio.sleep(0.3)
    await layer.close()
    try:
        with pytest.raises(LayerClosed):
            await asyncio.wait_for(waiting, 2)
    finally:
        waiting.cancel()
        with contextlib.suppress(BaseException):
            await waiting
    await other.send("work", {"type": "after"})  # not taken by the closed layer
    assert (await asyncio.wait_for(other.receive("work"), 2))["type"] == "after"


async def test_close_ends_a_receive_waiting_on_its_own_channel(
    make_redis_layer: MakeRedisLayer,
) -> None:
    """A consumer's reader waits on its ``!`` channel when the server closes the layer: it
    ends with ``LayerClosed`` (a ``StopConsumer``, so the consumer ends quietly), as
    channels_redis' receive ends (with an error) when its pools close; and the layer works
    again afterwards, as channels_redis' does."""
    layer = make_redis_layer()
    channel = await layer.new_channel()
    waiting = asyncio.create_task(layer.receive(channel))
    await asyncio.sleep(0.3)
    await layer.close()
    try:
        with pytest.raises(LayerClosed) as ended:
            await asyncio.wait_for(waiting, 2)
    finally:
        waiting.cancel()
        with contextlib.suppress(BaseException):
            await waiting
    assert isinstance(ended.value, StopConsumer)
    assert ended.value.channel == channel
    again = await layer.new_channel()
    await make_redis_layer().send(again, {"type": "after"})
    assert (await asyncio.wait_for(layer.receive(again), 2))["type"] == "after"
