"""A reviewer's checks of batched sends (a run per channel in SEND_LOCAL) through the layer,
and of the inbox reader cancelled while it connects (Popper.read)."""

from __future__ import annotations

import asyncio
from random import Random

import pytest
from redis.asyncio import Redis

from channelworks.exceptions import ChannelFull
from tests.layers.redis.conftest import MakeRedisLayer

pytestmark = pytest.mark.services

FAKE = "feedfacecafe0001"  # a process that is alive but has no reader: its inbox stays put


def channel(name: str, n: int) -> str:
    return f"{name}.{FAKE}!{n}"


@pytest.mark.parametrize("seed", range(12))
async def test_runs_outcomes_inbox_and_counts_agree(
    make_redis_layer: MakeRedisLayer, redis_url: str, seed: int
) -> None:
    random = Random(seed)
    caps = {"z": 0, "a": 3, "b": 50, "c": 1000, "d": 7}
    sender = make_redis_layer(
        capacity=100_000, channel_capacity={f"{k}.*": v for k, v in caps.items()}
    )
    keys = sender.keys
    client = Redis.from_url(redis_url)
    names = {k: channel(k, i) for i, k in enumerate(caps)}
    try:
        await client.set(keys.alive(FAKE), 1)
        initial = {"a": random.randint(0, 5), "b": random.randint(0, 60), "d": 0}
        await client.hset(keys.count(FAKE), mapping={names[k]: v for k, v in initial.items()})
        # warm up: the sender's home loop exists, so sends batch
        await sender.send(names["c"], {"type": "m", "id": -1})
        total = random.choice([40, 900, 1000, 1001, 2600])
        picks = [random.choice(list(caps)) for _ in range(total)]
        outcome: dict[int, bool] = {}

        async def one(i: int) -> None:
            try:
                await sender.send(names[picks[i]], {"type": "m", "id": i})
            except ChannelFull:
                outcome[i] = False
            else:
                outcome[i] = True

        tasks = [asyncio.create_task(one(i)) for i in range(total)]
        await asyncio.sleep(0)
        cancelled = set(random.sample(range(1, total), total // 7))
        for i in cancelled:
            tasks[i].cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raw: list[bytes] = await client.lrange(keys.inbox(FAKE), 0, -1)  # type: ignore[assignment]
        inbox: list[tuple[str, int]] = []
        for entry in raw:
            head, _, payload = entry.partition(b"\n")
            message = sender.codec.unseal(payload, b"", None)
            inbox.append((head.split(b" ")[3].decode(), message["id"]))
        ids = [i for _, i in inbox if i >= 0]
        assert len(ids) == len(set(ids)), "an entry pushed twice"
        pushed = set(ids)
        for i, ok in outcome.items():
            assert ok == (i in pushed), (i, picks[i], ok)
        for entry_channel, i in inbox:
            if i >= 0:
                assert entry_channel == names[picks[i]]
        counts = await client.hgetall(keys.count(FAKE))
        for k, name in names.items():
            in_inbox = [i for c, i in inbox if c == name]
            one_batch = total < 1000  # cut batches go on concurrent connections: any order
            if one_batch:
                assert in_inbox == sorted(in_inbox), f"order broken on {k}"
            stored = int(counts.get(name.encode(), b"0"))
            assert stored == initial.get(k, 0) + len(in_inbox), (k, stored)
            room = max(caps[k] - initial.get(k, 0), 0)
            assert len(in_inbox) <= room
            # id 0 goes alone (no send under way), concurrently with the batch
            mine = [i for i in range(1, total) if picks[i] == k and i in outcome]
            refused = [i for i in mine if not outcome[i]]
            if refused:
                assert len(in_inbox) == room
            if refused and one_batch:
                assert not [i for i in mine if outcome[i] and i > refused[0]], k
    finally:
        await client.delete(keys.alive(FAKE), keys.count(FAKE), keys.inbox(FAKE))
        await client.aclose()


async def test_reader_cancelled_while_connecting_leaks_nothing(
    make_redis_layer: MakeRedisLayer,
) -> None:
    owner = make_redis_layer()
    sender = make_redis_layer()
    channel = await owner.new_channel()
    home = owner._links.home
    assert home is not None
    assert home.reader is not None
    assert home.reader_task is not None
    reader = home.reader
    loop = asyncio.get_running_loop()
    pool = home.pipelines[owner._own_shard].shard._blocking  # type: ignore[attr-defined]
    n = 0
    for steps in range(60):
        await sender.send(channel, {"type": "m", "n": n})
        n += 1
        home.reader_task.cancel()
        await asyncio.gather(home.reader_task, return_exceptions=True)
        home.reader_task = loop.create_task(reader.run())
        for _ in range(steps % 15):
            await asyncio.sleep(0)
    got = [(await asyncio.wait_for(owner.receive(channel), 5))["n"] for _ in range(n)]
    assert got == list(range(n))
    assert len(pool._in_use_connections) <= 1
    await asyncio.sleep(0.2)
    assert owner.receive_nowait(channel) is None
