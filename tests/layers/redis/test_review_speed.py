"""Regressions found reviewing the p2p speed change (2b99477..654123f): each test names its bug."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from typing import Any

import pytest
import redis.asyncio

from channelworks.exceptions import MessageTooLarge
from tests.layers.redis.conftest import MakeRedisLayer
from tests.layers.redis.test_layer import receive

pytestmark = pytest.mark.services


async def _hook_first_delivery(layer: Any, after: Any) -> None:
    """Run ``after()`` once, right after the reader delivered its first non-empty batch (a
    concurrent flush's UNLINK landing between a TAKE and the ACK of its batch)."""
    reader = layer._reader
    real = reader.deliver
    done = False

    async def deliver(entries: list[bytes]) -> None:
        nonlocal done
        await real(entries)
        if entries and not done:
            done = True
            await after()

    reader.deliver = deliver


async def test_flush_page_deleting_the_count_hash_before_the_inbox_redelivers_nothing(
    make_redis_layer: MakeRedisLayer, redis_url: str
) -> None:
    """``flush`` UNLINKs by SCAN page (COUNT 1000 over the whole db; on a cluster one UNLINK per
    key), so a process's count hash (holding ``#batch``) can go before its inbox. The ACK of
    the batch delivered last then trims nothing, and as that batch now stays at the head of
    the inbox (no pending list any more), the next TAKE hands it out again."""
    owner, sender = make_redis_layer(), make_redis_layer()
    channel = await owner.new_channel()
    client = redis.asyncio.Redis.from_url(redis_url)
    try:

        async def first_page() -> None:
            await client.unlink(owner.keys.count(owner.pid))

        await _hook_first_delivery(owner, first_page)
        await sender.send(channel, {"type": "m", "n": 1})
        assert (await receive(owner, channel))["n"] == 1
        with pytest.raises(TimeoutError):  # delivered once only
            await asyncio.wait_for(owner.receive(channel), 2)
    finally:
        await client.aclose()


async def test_flush_page_deleting_the_inbox_before_the_count_hash_trims_nothing_undelivered(
    make_redis_layer: MakeRedisLayer, redis_url: str
) -> None:
    """The other order: the inbox goes first, a send lands in the new inbox, and the ACK
    (``#batch`` still there) trims ``size`` entries from the head: the new, undelivered one.
    With the pending list, an ACK only ever trimmed what a TAKE had moved out."""
    owner, sender = make_redis_layer(), make_redis_layer()
    channel = await owner.new_channel()
    client = redis.asyncio.Redis.from_url(redis_url)
    try:

        async def first_page_then_a_send() -> None:
            await client.unlink(owner.keys.inbox(owner.pid))
            await sender.send(channel, {"type": "m", "n": 2})

        await _hook_first_delivery(owner, first_page_then_a_send)
        await sender.send(channel, {"type": "m", "n": 1})
        assert (await receive(owner, channel))["n"] == 1
        assert (await receive(owner, channel))["n"] == 2
    finally:
        await client.aclose()


async def test_a_refused_big_message_does_not_pin_its_size_in_memory(
    make_redis_layer: MakeRedisLayer,
) -> None:
    """The per-thread msgpack Packer keeps its buffer at its high-water mark: one message
    refused by ``max_message_size`` (it is packed first) pins about twice its size in every
    thread that tried, for the life of the layer (``msgpack.packb`` freed it)."""
    layer = make_redis_layer()
    big = {"type": "big", "blob": b"x" * 40_000_000}
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        with pytest.raises(MessageTooLarge):
            await layer.send("elsewhere.0123456789abcdef!1", big)
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 5_000_000, f"{kept / 1e6:.0f} MB kept after the send was refused"


async def test_a_reader_drains_its_inbox_while_redis_is_over_maxmemory(tmp_path: Any) -> None:
    """TAKE is now plain commands, and its ``HSET #batch`` (a ``denyoom`` command) is refused
    once Redis is over ``maxmemory`` (noeviction, the policy a channel layer needs); the
    reader then hands nothing out (``took_at`` check), logs, sleeps, and tries again, while
    its ``PEXPIRE`` keeps the inbox alive: the inbox, which is what fills memory, is never
    drained. The TAKE script it replaced started with ``LTRIM`` (not ``denyoom``), after
    which Redis lets a script's later writes through, so it kept draining."""
    from channelworks.layers.redis import RedisChannelLayer
    from tests.layers.redis.servers import redis_server

    with redis_server(tmp_path, "--maxmemory-policy", "noeviction") as server:
        owner = RedisChannelLayer(hosts=[server.url], prefix="oom")
        sender = RedisChannelLayer(hosts=[server.url], prefix="oom")
        client = redis.asyncio.Redis.from_url(server.url)
        try:
            channel = await owner.new_channel()
            paused, gate = asyncio.Event(), asyncio.Event()

            async def pause() -> None:
                paused.set()
                await gate.wait()

            await _hook_first_delivery(owner, pause)
            await sender.send(channel, {"type": "m", "n": 0})
            await asyncio.wait_for(paused.wait(), 5)
            for n in range(1, 6):  # they wait in the inbox...
                await sender.send(channel, {"type": "m", "n": n})
            used = int((await client.info("memory"))["used_memory"])
            await client.config_set("maxmemory", used // 2)  # ...when memory runs out
            gate.set()
            got = [(await receive(owner, channel, timeout=8))["n"] for _ in range(6)]
            assert got == [0, 1, 2, 3, 4, 5]
        finally:
            await client.config_set("maxmemory", 0)
            await owner.close()
            await sender.close()
            await client.aclose()


async def test_a_dropped_round_trip_then_noscript_loses_nothing(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Redis restart with persistence, or a Sentinel failover (the new master has the data
    but an empty script cache), cuts the reader's round trip after Redis ran its ACK (the
    reader sits in BLMOVE behind it), then refuses the next ACK with NOSCRIPT. The TAKE of
    that next round trip is now plain commands and runs anyway; the reader still holds the
    old batch as unacknowledged, assumes it is at the head and skips that many entries of
    what LRANGE returned: entries never delivered, which the following ACK trims. (The TAKE
    script it replaced got NOSCRIPT too, so nothing was handed out.)"""
    from channelworks.layers.redis import RedisChannelLayer
    from channelworks.layers.redis import reader as reader_module
    from tests.layers.redis.servers import redis_server

    monkeypatch.setattr(reader_module, "backoff", lambda *args, **kwargs: 0.5)
    with redis_server(tmp_path) as server:
        owner = RedisChannelLayer(hosts=[server.url], prefix="failover")
        sender = RedisChannelLayer(hosts=[server.url], prefix="failover")
        client = redis.asyncio.Redis.from_url(server.url)
        try:
            channel = await owner.new_channel()
            await sender.send(channel, {"type": "m", "n": 0})
            assert (await receive(owner, channel))["n"] == 0  # batch delivered, unacked

            async def blocked_reader() -> int | None:
                for info in await client.client_list():
                    if info.get("cmd") == "blmove":  # its ACK ran; now it waits
                        return int(info["id"])
                return None

            for _ in range(100):
                blocked = await blocked_reader()
                if blocked is not None:
                    break
                await asyncio.sleep(0.02)
            assert blocked is not None
            await client.client_kill_filter(_id=str(blocked))  # the restart / failover cuts it
            await sender.send(channel, {"type": "m", "n": 1})
            await sender.send(channel, {"type": "m", "n": 2})
            await client.script_flush()  # the new server's empty script cache
            got = [(await receive(owner, channel, timeout=5))["n"] for _ in range(2)]
            assert got == [1, 2]
        finally:
            await owner.close()
            await sender.close()
            await client.aclose()
