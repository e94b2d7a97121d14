"""Sends to another process's channels made in one loop iteration go as one script call."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from redis.exceptions import TimeoutError as RedisTimeoutError

from channelworks.exceptions import ChannelFull
from channelworks.layers.redis import RedisChannelLayer, scripts, sends
from channelworks.layers.redis import layer as layer_module
from channelworks.layers.redis.errors import RedisUnavailable
from channelworks.layers.redis.shard import Command
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


async def _under_way(sender: RedisChannelLayer, channel: str) -> asyncio.Future[None]:
    """A send under way (so the next sends of this iteration are batched, not alone)."""
    first = asyncio.ensure_future(sender.send(channel, {"type": "m", "n": -1}))
    await asyncio.sleep(0)
    return first


async def test_a_leader_cancelled_after_others_joined_still_sends_theirs(
    make_redis_layer: MakeRedisLayer,
) -> None:
    owner = make_redis_layer()
    sender = make_redis_layer()
    await _warm(sender)
    channel = await owner.new_channel()
    first = await _under_way(sender, channel)
    tasks = [asyncio.ensure_future(sender.send(channel, {"type": "m", "n": i})) for i in range(4)]
    await asyncio.sleep(0)  # tasks[0] leads the batch, at its yield; the others joined it
    tasks[0].cancel()
    results = await asyncio.gather(first, *tasks, return_exceptions=True)
    assert [type(result) for result in results] == [
        type(None),
        asyncio.CancelledError,
        type(None),
        type(None),
        type(None),
    ]
    got = [(await asyncio.wait_for(owner.receive(channel), 2))["n"] for _ in range(4)]
    assert got == [-1, 1, 2, 3]
    assert owner.receive_nowait(channel) is None
    await asyncio.sleep(0)
    home = sender._links.home
    assert home is not None
    assert home.sending == 0


async def test_a_failed_batch_tells_and_counts_each_caller_once(
    make_redis_layer: MakeRedisLayer,
) -> None:
    owner = make_redis_layer()
    sender = make_redis_layer()
    await _warm(sender)
    channel = await owner.new_channel()
    home = sender._links.home
    assert home is not None
    shard = home.pipelines[0].shard
    real = shard.execute
    release = asyncio.Event()

    async def execute(commands: Sequence[Command], **options: Any) -> list[Any]:
        if any(command[:2] == ("EVALSHA", scripts.SEND_LOCAL.sha) for command in commands):
            await release.wait()  # on the wire until every send has joined
            raise RedisTimeoutError("no reply")  # not retried: a send may have run
        return await real(commands, **options)

    shard.execute = execute  # type: ignore[method-assign]
    before = sender.stats.send_batches
    try:
        first = await _under_way(sender, channel)
        sends = [
            asyncio.ensure_future(sender.send(channel, {"type": "m", "n": i})) for i in range(4)
        ]
        await asyncio.sleep(0)  # they start: a leader and three joiners
        await asyncio.sleep(0)  # the leader queues the batch
        release.set()
        results = await asyncio.gather(first, *sends, return_exceptions=True)
    finally:
        shard.execute = real  # type: ignore[method-assign]
    for result in results:
        assert isinstance(result, RedisUnavailable)
        assert isinstance(result.__cause__, RedisTimeoutError)
    assert sender.stats.redis_errors == 5
    assert sender.stats.send_batches - before == 2  # the first alone, the others together
    await sender.send(channel, {"type": "m", "n": 9})
    assert (await asyncio.wait_for(owner.receive(channel), 2))["n"] == 9


async def test_batches_cut_at_max_send_batch_lose_nothing(
    make_redis_layer: MakeRedisLayer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sends, "MAX_SEND_BATCH", 3)
    owner = make_redis_layer(capacity=100)
    sender = make_redis_layer(capacity=100)
    await _warm(sender)
    channel = await owner.new_channel()
    before = sender.stats.send_batches
    await asyncio.gather(*(sender.send(channel, {"type": "m", "n": i}) for i in range(11)))
    # the first alone, then 1-3, 4-6, 7-9 cut at 3 entries, then 10 alone
    assert sender.stats.send_batches - before == 5
    got = [(await asyncio.wait_for(owner.receive(channel), 2))["n"] for _ in range(11)]
    # different senders: each message once, in no particular order across batches
    assert sorted(got) == list(range(11))
    assert owner.receive_nowait(channel) is None


async def test_a_send_from_another_threads_loop_never_joins_the_home_loops_batch(
    make_redis_layer: MakeRedisLayer,
) -> None:
    """The home-loop check asks asyncio's loop which thread runs it (cheaper than asking for
    the running loop): a thread with a loop of its own must not be taken for home."""
    owner = make_redis_layer()
    sender = make_redis_layer()
    await _warm(sender)
    channel = await owner.new_channel()
    home = sender._links.home
    assert home is not None
    assert sender._links.at_home() is home
    first = await _under_way(sender, channel)  # opens a batch on the home loop
    seen: list[object] = []

    def other_thread() -> None:
        async def there() -> None:
            seen.append(sender._links.at_home())
            await sender.send(channel, {"type": "m", "n": 7})

        asyncio.run(there())

    await asyncio.to_thread(other_thread)
    await first
    assert seen == [None]
    got = {(await asyncio.wait_for(owner.receive(channel), 2))["n"] for _ in range(2)}
    assert got == {-1, 7}


async def test_send_targets_are_kept_per_name_within_a_bound(
    make_redis_layer: MakeRedisLayer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a send needs of a process-local name is worked out once per name; the set of
    names kept is bounded, and a name that is not a str is still refused as invalid."""
    from channelworks.exceptions import InvalidChannelName

    monkeypatch.setattr(layer_module, "MAX_TARGETS", 3)
    sender = make_redis_layer(channel_capacity={"capped.*": 1})  # first: it flushes at the end
    owner = make_redis_layer()
    await _warm(sender)
    channels = [await owner.new_channel() for _ in range(3)]
    capped = await owner.new_channel("capped")
    home = owner._links.home
    assert home is not None
    assert home.reader_task is not None
    home.reader_task.cancel()  # what is sent stays in Redis, counted against capacity
    await asyncio.gather(home.reader_task, return_exceptions=True)
    for n, channel in enumerate(channels):
        await sender.send(channel, {"type": "m", "n": n})
    assert set(sender._targets) == set(channels)
    target = sender._targets[channels[0]]
    assert (target.pid, target.name, target.own) == (owner.pid, channels[0].encode(), False)
    await sender.send(capped, {"type": "m"})  # the fourth name: the set starts afresh
    assert list(sender._targets) == [capped]
    with pytest.raises(ChannelFull):  # its capacity pattern came with it
        await sender.send(capped, {"type": "m"})
    for bad in (["not", "a", "name"], b"bytes.x!1", "no spaces.x!1"):
        with pytest.raises(InvalidChannelName):
            await sender.send(bad, {"type": "m"})  # type: ignore[arg-type]
    mine = await sender.new_channel("capped")
    await sender.send(mine, {"type": "m"})
    assert sender._targets[mine].own
    assert (await asyncio.wait_for(sender.receive(mine), 2))["type"] == "m"


async def test_a_full_channel_refuses_only_its_own_entries_in_a_batch(
    redis_url: str, prefix: str
) -> None:
    # One SEND_LOCAL call, three channels: "a" has room for one of its three entries, "b"
    # for all, "c" for none. The inbox gets exactly the accepted entries, run after run.
    from redis.asyncio import Redis

    from channelworks.layers.redis.sends import pack_arg, pack_head
    from channelworks.layers.redis.shard import Packed

    keys = inbox, count, alive = f"{prefix}:i", f"{prefix}:c", f"{prefix}:a"
    client = Redis.from_url(redis_url)

    async def send_local(runs: list[tuple[str, int, list[bytes]]]) -> Any:
        heads = [pack_head(c.encode(), n) + pack_arg(b"%d" % len(e)) for c, n, e in runs]
        entries = [pack_arg(entry) for _, _, run in runs for entry in run]
        packed = Packed(len(heads) * 3 + len(entries), b"".join(heads + entries))
        return await client.evalsha(
            scripts.SEND_LOCAL.sha, 3, *keys, 60000, len(runs), *packed.args()
        )

    try:
        await client.script_load(scripts.SEND_LOCAL.source)
        await client.set(alive, 1)
        await client.hset(count, mapping={"a": 4, "c": 2})
        runs = [("a", 5, [b"a1", b"a2", b"a3"]), ("b", 5, [b"b1", b"b2"]), ("c", 2, [b"c1"])]
        assert await send_local(runs) == b"100110"
        assert await client.lrange(inbox, 0, -1) == [b"a1", b"b1", b"b2"]
        assert await client.hgetall(count) == {b"a": b"5", b"b": b"2", b"c": b"2"}
        assert 0 < await client.pttl(inbox) <= 60000
        # Every entry accepted: they go from the arguments to the inbox as they came.
        assert await send_local([("d", 5, [b"d1"]), ("e", 5, [b"e1", b"e2"])]) == b"111"
        assert await client.lrange(inbox, 3, -1) == [b"d1", b"e1", b"e2"]
        # Nothing accepted: nothing pushed, no TTL touched.
        await client.persist(inbox)
        assert await send_local([("c", 2, [b"c2"])]) == b"0"
        assert await client.llen(inbox) == 6
        assert await client.pttl(inbox) == -1
    finally:
        await client.delete(*keys)
        await client.aclose()
