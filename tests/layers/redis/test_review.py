"""Regressions found reviewing the reliable-read rework: each test names the bug it pins."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest
import redis.asyncio

from channelworks.layers.redis import RedisChannelLayer, scripts
from tests.layers.redis.conftest import MakeRedisLayer
from tests.layers.redis.test_layer import eventually, receive

pytestmark = pytest.mark.services


def test_capacity_given_back_after_the_home_loop_changed(redis_url: str) -> None:
    """A reader made for a new home loop counted its acknowledgement ids from 1 again, which
    Redis ignores (ids only grow): the capacity of everything it took leaked, and the channel
    ended up refusing sends with ChannelFull while empty (a sync worker calling
    ``async_to_sync(layer.receive)`` changes home loop at every call)."""
    prefix = f"test-{secrets.token_hex(6)}"
    owner = RedisChannelLayer(hosts=[redis_url], prefix=prefix, capacity=2)
    sender = RedisChannelLayer(hosts=[redis_url], prefix=prefix, capacity=2)
    names: list[str] = []

    async def round_trip() -> None:
        channel = await owner.new_channel()  # starts the reader on this loop
        if not names:
            names.append(channel)
        client = redis.asyncio.Redis.from_url(redis_url)
        try:
            for n in range(2):
                await sender.send(names[0], {"type": "m", "n": n})
            assert [(await receive(owner, names[0]))["n"] for _ in range(2)] == [0, 1]

            async def given_back() -> bool:
                count = await client.hget(owner.keys.count(owner.pid), names[0])
                return count is None

            await eventually(given_back, what="the capacity to be given back")
        finally:
            await client.aclose()

    asyncio.run(round_trip())  # ends without close(): the next loop becomes home
    asyncio.run(round_trip())

    async def finish() -> None:
        await owner.flush()
        await owner.close()
        await sender.close()

    asyncio.run(finish())


async def test_a_sealed_payload_cannot_cross_between_a_group_and_a_channel_of_its_name(
    make_redis_layer: MakeRedisLayer, redis_url: str
) -> None:
    """Payloads were sealed to ``"<name> <expires>"`` for a channel and for a group alike, and
    a group may share its name with a normal channel: whoever could write to Redis could
    replay a group message into the channel ``jobs`` (to its workers), or a message for the
    channel ``jobs`` into every process's members of the group ``jobs``."""
    key = ["a key of at least 32 bytes of entropy, for the test"]
    layer = make_redis_layer(symmetric_encryption_keys=key)
    member = make_redis_layer(symmetric_encryption_keys=key)
    mine = await member.new_channel()
    await member.group_add("jobs", mine)
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        # A process that has members of "jobs" and does not read: its inbox shows the entry.
        await client.zadd(layer.keys.group("jobs"), {"@silent": 2**50})
        await client.set(layer.keys.alive("silent"), b"1", px=60_000)
        await layer.group_send("jobs", {"type": "to.the.group"})
        assert (await receive(member, mine))["type"] == "to.the.group"
        (entry,) = await client.lrange(layer.keys.inbox("silent"), 0, -1)
        assert isinstance(entry, bytes)
        head, _, token = entry.partition(b"\n")
        expires = head.split(b" ")[1]
        await client.rpush(layer.keys.channel("jobs"), expires + b"\n" + token)
        await layer.send("jobs", {"type": "to.the.channel"})
        (stored,) = await client.lrange(layer.keys.channel("jobs"), 1, 1)
        assert isinstance(stored, bytes)
        expires, _, token = stored.partition(b"\n")
        await client.rpush(member.keys.inbox(member.pid), b"g %s x:0 jobs\n%s" % (expires, token))
        # the group's payload is refused by the channel's reader, who gets the genuine one
        assert (await receive(layer, "jobs"))["type"] == "to.the.channel"
        assert layer.stats.undecodable == 1
        with pytest.raises(TimeoutError):  # the channel's payload is refused by the group
            await receive(member, mine, timeout=0.5)
        assert member.stats.undecodable == 1
    finally:
        await client.delete(layer.keys.inbox("silent"), layer.keys.alive("silent"))
        await client.aclose()


async def test_a_process_stays_in_a_group_it_joins_while_its_last_member_leaves(
    make_redis_layer: MakeRedisLayer,
) -> None:
    """``group_discard`` of a process's last member of a group removes ``@pid`` from Redis; a
    ``group_add`` of another of its channels made meanwhile may reach Redis first (another
    connection), and its ``@pid`` was then removed: other processes' group sends missed the
    new member until the next heartbeat."""
    layer, other = make_redis_layer(), make_redis_layer()

    async def no_heartbeat() -> None:  # the heartbeat would repair it later: not in this test
        return None

    layer._beat = no_heartbeat  # type: ignore[method-assign]
    leaving, joining = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("room", leaving)
    added = asyncio.Event()
    call = layer._links.call

    async def late_zrem(index: int, command: Any, operation: str, target: str) -> Any:
        if command[0] == "ZREM":  # the discard's ZREM reaches Redis after the add's ZADD
            await added.wait()
        return await call(index, command, operation, target)

    layer._links.call = late_zrem  # type: ignore[method-assign]
    discard = asyncio.create_task(layer.group_discard("room", leaving))
    await asyncio.sleep(0)  # the discard has removed its member locally and sent its ZREM
    await layer.group_add("room", joining)
    added.set()
    await discard
    await other.group_send("room", {"type": "hello"})
    assert (await receive(layer, joining))["type"] == "hello"


async def test_scripts_lost_while_a_batch_is_unacknowledged_deliver_nothing_twice(
    make_redis_layer: MakeRedisLayer, redis_url: str
) -> None:
    """A reader round whose ACK was refused (``NOSCRIPT``: ``SCRIPT FLUSH``, or a restart
    that kept the data) but whose TAKE ran, after a sender had loaded the scripts again, was
    thrown away whole: the next TAKE handed out the batch already delivered again with the new
    entries (a duplicate), and had the TAKE failed too, the next ACK deleted entries a blocking
    move had added to the pending list (a loss)."""
    layer, sender = make_redis_layer(), make_redis_layer()
    channel = await layer.new_channel()
    home = layer._links.home
    assert home is not None
    assert home.reader is not None
    reader = home.reader
    client = redis.asyncio.Redis.from_url(redis_url)
    flushed = asyncio.Event()
    run = reader.popper.read

    async def run_after_script_flush(commands: Any, **options: Any) -> Any:
        if not flushed.is_set() and any(scripts.ACK.sha in command for command in commands):
            await client.script_flush()
            flushed.set()
        return await run(commands, **options)

    reader.popper.read = run_after_script_flush  # type: ignore[method-assign]
    try:
        await sender.send(channel, {"type": "m", "n": 1})
        assert (await receive(layer, channel))["n"] == 1
        await flushed.wait()

        async def reader_blocked() -> bool:  # its ACK refused, its BLMOVE waiting
            return any(c["cmd"] == "blmove" for c in await client.client_list())

        await eventually(reader_blocked, what="the reader's blocking move")
        await sender.send(channel, {"type": "m", "n": 2})  # loads the scripts again
        assert (await receive(layer, channel))["n"] == 2
        with pytest.raises(TimeoutError):
            await receive(layer, channel, timeout=0.5)
    finally:
        await client.aclose()


async def test_a_connection_lost_reading_a_batch_is_redis_unavailable_counted(
    make_redis_layer: MakeRedisLayer,
) -> None:
    """A cluster pipeline hands back a connection lost while reading replies as a value; a
    sharded ``group_send`` raised it as it was: not ``RedisUnavailable``, not counted in
    ``stats.redis_errors``, not logged."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    from channelworks.layers.redis.errors import RedisUnavailable

    layer = make_redis_layer()
    connections, _ = await layer._links.here()
    shard = connections.pipelines[0].shard

    async def lost_while_reading(commands: Any, **options: Any) -> list[Any]:
        return [RedisConnectionError("Connection closed by server.") for _ in commands]

    shard.execute = lost_while_reading  # type: ignore[method-assign]
    try:
        with pytest.raises(RedisUnavailable, match="closed by server"):
            await layer._links.batch(0, [("SET", "k", b"1")], "group_send", "room")
    finally:
        del shard.execute
    assert layer.stats.redis_errors == 1


async def test_a_process_that_closes_leaves_its_groups(
    make_redis_layer: MakeRedisLayer, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """``close()`` deleted its alive key but left ``@pid`` in every group it had members of:
    the next group_send to each reported it as a dead member at WARNING (on every deploy)."""
    leaving, staying = make_redis_layer(), make_redis_layer()
    for group in ("room.1", "room.2"):
        await leaving.group_add(group, await leaving.new_channel())
    await leaving.close()
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        for group in ("room.1", "room.2"):
            assert await client.zrange(leaving.keys.group(group), 0, -1) == []
    finally:
        await client.aclose()
    await staying.group_send("room.1", {"type": "hello"})
    assert staying.stats.dead_members == 0


@pytest.mark.parametrize("next_channel", ["jobs", "other"])
async def test_a_receive_cancelled_mid_read_and_the_next_receive_deliver_once(
    make_redis_layer: MakeRedisLayer, monkeypatch: pytest.MonkeyPatch, next_channel: str
) -> None:
    """A normal-channel receive cancelled while its pop was on the wire leaves the entry in
    its hold list and puts it back (``restore``). The popper let the next receive (of that
    channel, or of another on the same idle popper, which first moves what is held back to
    its own channel) start before that put-back had run: the held entry was moved back by
    the next receive too, and the put-back then pushed a second copy (seen under CPU load as
    a duplicate in ``test_cancelled_receives_on_a_normal_channel_lose_nothing``)."""
    from channelworks.layers.redis.pop import Popper

    reader, sender = make_redis_layer(), make_redis_layer()
    await sender.send("jobs", {"type": "job", "n": 1})
    reading = asyncio.Event()
    cancelled = asyncio.Event()
    real_run = Popper._run
    first = True

    async def run(self: Popper, *args: Any) -> list[Any]:
        nonlocal first
        if first:  # the first read: its caller is cancelled before the reply comes
            first = False
            reading.set()
            await cancelled.wait()
        return await real_run(self, *args)

    restoring, release = asyncio.Event(), asyncio.Event()
    real_restore = reader._restore

    async def slow_restore(*args: Any) -> bool:
        restoring.set()
        await release.wait()
        return await real_restore(*args)

    monkeypatch.setattr(Popper, "_run", run)
    monkeypatch.setattr(reader, "_restore", slow_restore)
    waiting = asyncio.create_task(reader.receive("jobs"))
    await reading.wait()
    waiting.cancel()
    cancelled.set()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await asyncio.wait_for(restoring.wait(), 5)  # the cancelled read's put-back is under way
    second = asyncio.create_task(reader.receive(next_channel))  # the same, idle, popper
    await asyncio.sleep(0.2)  # with the bug, it moves the held entry back now
    release.set()
    if next_channel == "jobs":
        assert (await asyncio.wait_for(second, 5))["n"] == 1
    else:
        await asyncio.sleep(0.2)
        second.cancel()
        await asyncio.gather(second, return_exceptions=True)
        assert (await asyncio.wait_for(reader.receive("jobs"), 5))["n"] == 1
    with pytest.raises(TimeoutError):  # and there is no second copy
        await asyncio.wait_for(reader.receive("jobs"), 1.5)
