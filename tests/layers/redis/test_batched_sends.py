"""Sends to another process's channels made in one loop iteration go as one script call."""

from __future__ import annotations

import asyncio

import pytest

from channelworks.exceptions import ChannelFull
from channelworks.layers.redis import RedisChannelLayer
from tests.layers.redis.conftest import MakeRedisLayer

pytestmark = pytest.mark.services


async def _warm(sender: RedisChannelLayer) -> None:
    """Make ``sender``'s home loop this one (its first I/O), so its sends may be batched."""
    await sender.new_channel()


async def test_concurrent_sends_to_one_process_go_as_one_script_call_in_order(
    make_redis_layer: MakeRedisLayer,
) -> None:
    owner = make_redis_layer()
    sender = make_redis_layer()
    await _warm(sender)
    first, second = await owner.new_channel(), await owner.new_channel()
    before = sender.stats.send_batches
    await asyncio.gather(
        *(sender.send((first, second)[i % 2], {"type": "m", "n": i}) for i in range(40))
    )
    assert sender.stats.send_batches - before == 2  # the first alone, the others together
    got_first = [(await owner.receive(first))["n"] for _ in range(20)]
    got_second = [(await owner.receive(second))["n"] for _ in range(20)]
    assert got_first == list(range(0, 40, 2))
    assert got_second == list(range(1, 40, 2))


async def test_each_caller_of_a_batch_gets_its_own_outcome(
    make_redis_layer: MakeRedisLayer,
) -> None:
    owner = make_redis_layer(channel_capacity={"small*": 2})
    sender = make_redis_layer(channel_capacity={"small*": 2})
    await _warm(sender)
    small, big = await owner.new_channel("small"), await owner.new_channel("big")
    before = sender.stats.send_batches
    targets = [small, big, small, small, big, small]
    results = await asyncio.gather(
        *(sender.send(target, {"type": "m", "n": i}) for i, target in enumerate(targets)),
        return_exceptions=True,
    )
    assert sender.stats.send_batches - before == 2  # the first alone, the others together
    assert [isinstance(result, ChannelFull) for result in results] == [
        False,
        False,
        False,
        True,
        False,
        True,
    ]
    assert [(await owner.receive(small))["n"] for _ in range(2)] == [0, 2]
    assert [(await owner.receive(big))["n"] for _ in range(2)] == [1, 4]


async def test_sequential_senders_interleaved_keep_order_per_channel(
    make_redis_layer: MakeRedisLayer,
) -> None:
    owner = make_redis_layer(capacity=1000)
    sender = make_redis_layer(capacity=1000)
    await _warm(sender)
    channels = [await owner.new_channel() for _ in range(3)]

    async def run(task: int) -> None:
        for i in range(50):
            await sender.send(channels[i % 3], {"type": "m", "task": task, "n": i})

    before = sender.stats.send_batches
    await asyncio.gather(*(run(task) for task in range(8)))
    assert sender.stats.send_batches - before < 8 * 50  # they did share script calls
    for channel in channels:
        expected = [i for i in range(50) if channels[i % 3] == channel]
        seen: dict[int, list[int]] = {}
        for _ in range(8 * len(expected)):
            message = await asyncio.wait_for(owner.receive(channel), 2)
            seen.setdefault(message["task"], []).append(message["n"])
        assert seen == dict.fromkeys(range(8), expected)
        assert owner.receive_nowait(channel) is None


async def test_a_batch_to_a_dead_process_counts_each_drop(
    make_redis_layer: MakeRedisLayer,
) -> None:
    owner = make_redis_layer()
    sender = make_redis_layer()
    await _warm(sender)
    channel = await owner.new_channel()
    await owner.close()
    before = sender.stats.send_batches
    await asyncio.gather(*(sender.send(channel, {"type": "lost"}) for _ in range(5)))
    assert sender.stats.send_batches - before == 2  # the first alone, the others together
    assert sender.stats.dead_process == 5


async def test_a_send_cancelled_before_its_batch_went_is_not_sent(
    make_redis_layer: MakeRedisLayer,
) -> None:
    owner = make_redis_layer()
    sender = make_redis_layer()
    await _warm(sender)
    channel = await owner.new_channel()
    tasks = [asyncio.ensure_future(sender.send(channel, {"type": "m", "n": i})) for i in range(4)]
    await asyncio.sleep(0)  # every task has joined the batch; it has not gone yet
    tasks[1].cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[1], asyncio.CancelledError)
    got = [(await owner.receive(channel))["n"] for _ in range(3)]
    assert got == [0, 2, 3]
    assert owner.receive_nowait(channel) is None
