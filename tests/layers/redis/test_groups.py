"""Groups cost per process, not per member; a process's own members never wait for Redis."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio

from tests.layers.redis.conftest import MakeRedisLayer

pytestmark = pytest.mark.services


@pytest.fixture
async def client(redis_url: str) -> Any:
    connection = redis.asyncio.Redis.from_url(redis_url)
    yield connection
    await connection.aclose()


async def test_a_group_holds_one_entry_per_process_and_sends_one_small_entry(
    make_redis_layer: MakeRedisLayer, client: Any
) -> None:
    owner = make_redis_layer()
    sender = make_redis_layer(deliver_locally=False)
    channels = [await owner.new_channel() for _ in range(300)]
    for channel in channels:
        await owner.group_add("room", channel)
    assert await client.zrange(owner.keys.group("room"), 0, -1) == [f"@{owner.pid}".encode()]
    # the entry for the owner names the group, not its 300 members: watch it pass
    inbox = owner.keys.inbox(owner.pid)
    seen: list[int] = []

    async def watch() -> None:
        while not seen:
            seen.extend(len(entry) for entry in await client.lrange(inbox, 0, -1))
            await asyncio.sleep(0)

    watcher = asyncio.create_task(watch())
    home = owner._links.home
    assert home is not None
    assert home.reader_task is not None
    home.reader_task.cancel()  # hold the reader back, so the entry stays for us to see
    await asyncio.gather(home.reader_task, return_exceptions=True)
    await sender.group_send("room", {"type": "chat", "text": "hi"})
    await asyncio.wait_for(watcher, 5)
    assert max(seen) < 200  # one header and the payload, whatever the member count


async def test_a_group_send_reaches_this_processs_members_without_a_round_trip(
    make_redis_layer: MakeRedisLayer,
) -> None:
    layer = make_redis_layer()
    other = make_redis_layer()
    mine = [await layer.new_channel() for _ in range(3)]
    theirs = await other.new_channel()
    for channel in mine:
        await layer.group_add("room", channel)
    await other.group_add("room", theirs)
    await layer.group_send("room", {"type": "chat"})
    # in the local queues as soon as group_send returns (not through Redis and the reader)
    assert [layer.receive_nowait(channel) for channel in mine] == [{"type": "chat"}] * 3
    got = await asyncio.wait_for(other.receive(theirs), 3)
    assert got == {"type": "chat"}  # other processes still get it through Redis
    await asyncio.sleep(0.2)
    assert [layer.receive_nowait(channel) for channel in mine] == [None] * 3  # once only


async def test_members_added_and_discarded_by_another_process(
    make_redis_layer: MakeRedisLayer,
) -> None:
    owner = make_redis_layer()
    admin = make_redis_layer()
    joined_here = await owner.new_channel()
    joined_there = await owner.new_channel()
    await owner.group_add("room", joined_here)
    await admin.group_add("room", joined_there)  # the owner does not know about this one
    await admin.group_send("room", {"type": "one"})
    assert (await asyncio.wait_for(owner.receive(joined_here), 3))["type"] == "one"
    assert (await asyncio.wait_for(owner.receive(joined_there), 3))["type"] == "one"
    await owner.group_send("room", {"type": "two"})  # own members locally, the other via Redis
    assert (await asyncio.wait_for(owner.receive(joined_here), 3))["type"] == "two"
    assert (await asyncio.wait_for(owner.receive(joined_there), 3))["type"] == "two"
    # another process discards one the owner added itself: the owner is told
    await admin.group_discard("room", joined_here)
    await admin.group_discard("room", joined_there)
    await admin.group_send("room", {"type": "three"})  # behind the discard, in the inbox
    await asyncio.sleep(0.3)
    # the owner heard of the discard through its inbox, so its own sends skip it too
    assert owner.local.members("room") == []
    await owner.group_send("room", {"type": "three"})
    assert owner.receive_nowait(joined_here) is None
    assert owner.receive_nowait(joined_there) is None


async def test_a_last_member_leaving_during_a_beat_leaves_no_ghost_entry(
    make_redis_layer: MakeRedisLayer, client: Any
) -> None:
    # The keeper's beat renews this process in each group it has members of; a discard of
    # the last member whose ZREM lands before the beat's ZADD must not leave the process in
    # that group (the churn test saw such a key after 5,000 cycles under load).
    layer = make_redis_layer()
    channel = await layer.new_channel()
    await layer.group_add("room", channel)
    home = layer._links.home
    assert home is not None
    pipeline = home.pipelines[layer._links.shard_of("room")]
    real_run = pipeline.run

    async def discard_first(commands: Any, **options: Any) -> Any:
        pipeline.run = real_run  # type: ignore[method-assign]
        await layer.group_discard("room", channel)  # its ZREM reaches Redis first
        return await real_run(commands, **options)

    pipeline.run = discard_first  # type: ignore[method-assign]
    await layer._beat()
    assert await client.zrange(layer.keys.group("room"), 0, -1) == []
