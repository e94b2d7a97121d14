"""Redis specifics in one process: capacity across processes, overflow, expiry, bad data,
cancelled receives on shared channels, flush, other event loops."""

from __future__ import annotations

import asyncio
import datetime
import logging
import secrets
import threading
from typing import Any

import pytest
import redis.asyncio
from asgiref.sync import async_to_sync

from channelworks.exceptions import ChannelFull, InvalidMessage
from channelworks.layers.redis import ForeignChannel, RedisChannelLayer
from tests.layers.redis.conftest import MakeRedisLayer

pytestmark = pytest.mark.services


async def receive(layer: RedisChannelLayer, channel: str, timeout: float = 3) -> dict[str, Any]:
    return await asyncio.wait_for(layer.receive(channel), timeout)


async def eventually(check: Any, timeout: float = 5, what: str = "condition") -> None:
    for _ in range(int(timeout / 0.02)):
        if await check():
            return
        await asyncio.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


async def send_when_room(
    sender: RedisChannelLayer, channel: str, message: dict[str, Any], what: str
) -> None:
    """Send ``message`` once ``channel`` has room again (the owner has told Redis what it
    took)."""

    async def sent() -> bool:
        try:
            await sender.send(channel, message)
        except ChannelFull:
            return False
        return True

    await eventually(sent, what=what)


@pytest.fixture
async def client(redis_url: str) -> Any:
    connection = redis.asyncio.Redis.from_url(redis_url)
    yield connection
    await connection.aclose()


async def test_capacity_of_a_process_local_channel_holds_across_processes(
    make_redis_layer: MakeRedisLayer,
) -> None:
    owner = make_redis_layer(capacity=2)
    sender = make_redis_layer(capacity=2)
    channel = await owner.new_channel()
    accepted = 0
    refused: ChannelFull | None = None
    for n in range(10):
        try:
            await sender.send(channel, {"type": "fill", "n": n})
        except ChannelFull as exc:
            refused = exc
            break
        accepted += 1
        await asyncio.sleep(0.05)  # the reader moves entries into the process meanwhile
    assert refused is not None
    assert refused.channel == channel
    # Redis holds at most `capacity` not yet taken by the owner, which holds `capacity` more.
    assert 2 <= accepted <= 4
    assert [(await receive(owner, channel))["n"] for _ in range(accepted)] == list(range(accepted))
    await send_when_room(sender, channel, {"type": "fill", "n": -1}, "room in the channel again")
    assert (await receive(owner, channel))["n"] == -1


async def test_a_consumers_reader_gets_what_waits_in_overflow_after_the_local_queue(
    make_redis_layer: MakeRedisLayer,
) -> None:
    # A consumer's reader polls the process's queue only, then waits: the wait must serve
    # what waits in overflow (the queue was full when it came) before it waits.
    owner = make_redis_layer(capacity=2)
    sender = make_redis_layer(capacity=2)
    channel = await owner.new_channel()
    poll, wait = owner.reader_calls(channel, asyncio.get_running_loop())
    for n in range(4):
        await sender.send(channel, {"type": "fill", "n": n})
        await asyncio.sleep(0.05)  # the reader moves entries into the process meanwhile
    home = owner._links.home
    assert home is not None
    assert home.reader is not None
    assert len(home.reader.overflow.get(channel, ())) == 2
    got: list[int] = []
    while len(got) < 4:
        message = poll(channel)
        if message is None:
            message = await asyncio.wait_for(wait(channel), 3)
        got.append(message["n"])
    assert got == [0, 1, 2, 3]
    assert home.reader.overflow == {}
    waiting = asyncio.ensure_future(wait(channel))  # nothing left: it waits in the process
    await send_when_room(sender, channel, {"type": "fill", "n": 4}, "room in the channel again")
    assert (await asyncio.wait_for(waiting, 3))["n"] == 4


async def test_group_send_to_a_full_member_is_counted_by_the_receiving_process(
    make_redis_layer: MakeRedisLayer, client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    owner = make_redis_layer(capacity=1)
    sender = make_redis_layer(capacity=1)
    full, free = await owner.new_channel(), await owner.new_channel()
    await owner.group_add("room", full)
    await owner.group_add("room", free)
    await sender.send(full, {"type": "filler"})

    async def taken() -> bool:  # the owner's reader has moved it into the process
        return await client.hget(owner.keys.count(owner.pid), full) is None

    await eventually(taken, what="the owner to take the filler")
    with caplog.at_level(logging.WARNING, logger="channelworks.layers"):
        await sender.group_send("room", {"type": "chat.message"})
        assert (await receive(owner, free))["type"] == "chat.message"
    assert owner.stats.group_full == 1
    assert sender.stats.group_full == 0
    assert any(
        "room" in r.getMessage() and "chat.message" in r.getMessage() for r in caplog.records
    )
    assert (await receive(owner, full))["type"] == "filler"


async def test_expired_and_undecodable_inbox_entries_are_counted_and_logged(
    make_redis_layer: MakeRedisLayer, client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    layer = make_redis_layer()
    channel = await layer.new_channel()
    inbox = layer.keys.inbox(layer.pid)
    with caplog.at_level(logging.ERROR, logger="channelworks.layers.redis"):
        await client.rpush(inbox, f"s 1000 -:0 {channel}\n".encode() + b"\x80")  # long expired
        await client.rpush(inbox, f"s 99999999999999 -:0 {channel}\n".encode() + b"\xc1junk")
        await client.rpush(inbox, b"nonsense")
        await layer.send(channel, {"type": "after"})  # in memory, but behind nothing of ours
        other = make_redis_layer()
        await other.send(channel, {"type": "through.redis"})
        assert (await receive(layer, channel))["type"] == "after"
        assert (await receive(layer, channel))["type"] == "through.redis"
        assert layer.stats.expired == 1
        assert layer.stats.undecodable == 2  # exact
        # logged aggregated: the first at once, the second when the layer closes
        assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 1
        await layer.close()
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2
    assert "malformed inbox entry" in errors[1]


async def test_own_sends_stay_behind_own_group_sends(make_redis_layer: MakeRedisLayer) -> None:
    layer = make_redis_layer()
    channel = await layer.new_channel()
    await layer.group_add("room", channel)
    for n in range(20):
        await layer.group_send("room", {"type": "group", "n": n})
        await layer.send(channel, {"type": "direct", "n": n})
    got = [await receive(layer, channel) for _ in range(40)]
    assert got == [{"type": t, "n": n} for n in range(20) for t in ("group", "direct")]


async def test_cancelled_receives_on_a_normal_channel_lose_nothing(
    make_redis_layer: MakeRedisLayer,
) -> None:
    reader, sender = make_redis_layer(), make_redis_layer()
    received = []
    for n in range(20):
        waiting = asyncio.create_task(reader.receive("jobs"))
        await asyncio.sleep(0.002 * (n % 5))
        await sender.send("jobs", {"type": "job", "n": n})
        waiting.cancel()
        (result,) = await asyncio.gather(waiting, return_exceptions=True)
        if isinstance(result, dict):
            received.append(result["n"])
    while len(received) < 20:
        received.append((await receive(sender, "jobs"))["n"])
    assert sorted(received) == list(range(20))
    assert reader.stats.lost == 0


async def test_two_readers_share_a_normal_channel(make_redis_layer: MakeRedisLayer) -> None:
    sender, first, second = make_redis_layer(), make_redis_layer(), make_redis_layer()
    got: dict[str, list[int]] = {"first": [], "second": []}

    async def read(name: str, layer: RedisChannelLayer) -> None:
        while True:
            got[name].append((await layer.receive("work.queue"))["n"])
            await asyncio.sleep(0.005)

    readers = [
        asyncio.create_task(read("first", first)),
        asyncio.create_task(read("second", second)),
    ]
    try:
        for n in range(60):
            await sender.send("work.queue", {"type": "job", "n": n})

        async def all_in() -> bool:
            return len(got["first"]) + len(got["second"]) >= 60

        await eventually(all_in, what="every job to be taken")
    finally:
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    assert sorted(got["first"] + got["second"]) == list(range(60))
    assert got["first"]
    assert got["second"]


async def test_values_msgpack_cannot_carry_are_refused_naming_their_type(
    make_redis_layer: MakeRedisLayer,
) -> None:
    layer = make_redis_layer()
    own = await layer.new_channel()
    bad = {"type": "x", "when": datetime.datetime(2024, 1, 1)}
    for call in (layer.send("chan", bad), layer.send(own, bad), layer.group_send("g", bad)):
        with pytest.raises(InvalidMessage, match="datetime"):
            await call


async def test_receive_from_another_process_channel_is_refused(
    make_redis_layer: MakeRedisLayer,
) -> None:
    first, second = make_redis_layer(), make_redis_layer()
    theirs = await second.new_channel()
    with pytest.raises(ForeignChannel) as info:
        await first.receive(theirs)
    assert info.value.channel == theirs
    with pytest.raises(ForeignChannel):
        first.receive_nowait(theirs)


async def test_flush_drops_what_was_on_its_way(make_redis_layer: MakeRedisLayer) -> None:
    layer = make_redis_layer(deliver_locally=False)
    channel = await layer.new_channel()
    for n in range(50):
        await layer.send(channel, {"type": "old", "n": n})
    await layer.flush()
    await layer.send(channel, {"type": "new"})
    assert (await receive(layer, channel))["type"] == "new"
    assert layer.receive_nowait(channel) is None


async def test_calls_from_threads_with_their_own_loops(make_redis_layer: MakeRedisLayer) -> None:
    layer = make_redis_layer()
    got: list[dict[str, Any]] = []

    def worker() -> None:  # like a sync consumer or a WSGI view: async_to_sync in a thread
        got.append(async_to_sync(layer.receive)("from.main"))
        async_to_sync(layer.send)("from.thread", {"type": "hello.main"})

    thread = threading.Thread(target=worker)
    thread.start()
    await layer.send("from.main", {"type": "hello.thread"})
    assert (await receive(layer, "from.thread", timeout=5))["type"] == "hello.main"
    await asyncio.to_thread(thread.join, 5)
    assert got == [{"type": "hello.thread"}]


def test_a_loop_that_ends_without_close_releases_the_connections(redis_url: str) -> None:
    layer = RedisChannelLayer(hosts=[redis_url], prefix=f"test-{secrets.token_hex(6)}")

    async def use() -> str:
        channel = await layer.new_channel()
        await layer.send("test-loop-end-chan", {"type": "x"})
        assert (await layer.receive("test-loop-end-chan"))["type"] == "x"
        return channel

    first = asyncio.run(use())  # ends without close(): the loop's shutdown releases them
    assert layer._links.home is None
    second = asyncio.run(use())  # a new loop becomes home
    assert first != second

    async def finish() -> None:
        await layer.flush()
        await layer.close()

    asyncio.run(finish())


async def test_new_channel_from_a_thread_starts_the_reader_at_home(
    make_redis_layer: MakeRedisLayer,
) -> None:
    layer, sender = make_redis_layer(), make_redis_layer()
    await layer.send("warm.up", {"type": "x"})  # the home loop has connections, no reader yet
    channel = await asyncio.to_thread(async_to_sync(layer.new_channel))
    await sender.send(channel, {"type": "through.the.inbox"})
    assert (await receive(layer, channel))["type"] == "through.the.inbox"


async def test_a_message_over_max_message_size_is_refused_naming_its_size(
    make_redis_layer: MakeRedisLayer,
) -> None:
    from channelworks.exceptions import MessageTooLarge

    layer = make_redis_layer(max_message_size=1000)
    other = make_redis_layer()
    mine = await layer.new_channel()
    theirs = await other.new_channel()
    await layer.group_add("room", mine)
    big = {"type": "big", "data": b"x" * 2000}
    for target in ("work", mine, theirs):  # mine: in memory, refused all the same
        with pytest.raises(MessageTooLarge, match=r"of 20\d\d bytes .* max_message_size of 1000"):
            await layer.send(target, big)
    with pytest.raises(MessageTooLarge, match=r"of 20\d\d bytes .* max_message_size of 1000"):
        await layer.group_send("room", big)
    await layer.send(mine, {"type": "small", "data": b"x" * 900})
    assert (await receive(layer, mine))["type"] == "small"
    with pytest.raises(ValueError, match="max_message_size"):
        make_redis_layer(max_message_size=0)
    assert make_redis_layer(max_message_size=None).max_message_size is None
