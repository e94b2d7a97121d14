"""Regressions found reviewing the header-checked ACK (reader.py, scripts.ACK): one per scenario."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio
from redis.exceptions import ConnectionError as RedisConnectionError

from channelworks.layers.redis import RedisChannelLayer, scripts
from tests.layers.redis.conftest import MakeRedisLayer
from tests.layers.redis.servers import redis_server
from tests.layers.redis.test_layer import eventually, receive

pytestmark = pytest.mark.services


def gate_reader(layer: RedisChannelLayer) -> tuple[Any, asyncio.Event]:
    """Hold the layer's inbox reader before each round trip while the returned event is clear."""
    home = layer._links.home
    assert home is not None
    assert home.reader is not None
    reader = home.reader
    gate = asyncio.Event()
    gate.set()
    run = reader.popper.read

    async def gated(commands: Any, **options: Any) -> Any:
        await gate.wait()
        return await run(commands, **options)

    reader.popper.read = gated  # type: ignore[method-assign]
    return reader, gate


async def blocked(client: Any) -> bool:
    return any(c["cmd"] == "blmove" for c in await client.client_list())


async def test_a_retried_push_lets_a_resent_ack_trim_an_entry_never_delivered(
    make_redis_layer: MakeRedisLayer, redis_url: str
) -> None:
    """Entry headers are not unique: a push whose reply is lost with its connection is run
    again by the pipeline (at least once), so the inbox holds the same header twice. The
    reader's ACK is re-sent after any connection drop that follows it (the write was ACK +
    BLMOVE: the ACK ran, the drop came while blocked). That re-sent ACK finds the duplicate
    where the batch's last entry was and trims it together with X, sent by someone else in
    between and never delivered: X is lost."""
    layer, sender, other = make_redis_layer(), make_redis_layer(), make_redis_layer()
    channel = await layer.new_channel()
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        reader, gate = gate_reader(layer)
        await eventually(lambda: blocked(client), what="the reader's blocking move")
        gate.clear()  # the round after the next one waits here
        await sender.send(channel, {"type": "m", "n": "w"})
        assert (await receive(layer, channel))["n"] == "w"
        # The reader waits at the gate with ACK(w) due; A and B land in the inbox together.
        await sender.send(channel, {"type": "m", "n": "a"})
        shard = sender._links.home.pipelines[0].shard  # type: ignore[union-attr]
        execute = shard.execute
        release = asyncio.Event()

        async def reply_lost(commands: Any, **options: Any) -> Any:
            # B's SEND_LOCAL runs; its reply is lost with the connection (held until told)
            await execute(commands, **options)
            del shard.execute
            await release.wait()
            raise RedisConnectionError("Connection closed by server.")

        shard.execute = reply_lost  # type: ignore[method-assign]
        send_b = asyncio.create_task(sender.send(channel, {"type": "m", "n": "b"}))
        inbox = layer.keys.inbox(layer.pid)

        async def three() -> bool:
            return await client.llen(inbox) == 3

        await eventually(three, what="w, a, b in the inbox")
        gate.set()  # ACK(w), then a read of [a, b]
        assert (await receive(layer, channel))["n"] == "a"
        assert (await receive(layer, channel))["n"] == "b"

        async def acked_and_blocked() -> bool:  # ACK(a, b) ran, its BLMOVE waits
            return await client.llen(inbox) == 0 and await blocked(client)

        await eventually(acked_and_blocked, what="the ACK of [a, b] and the next wait")
        gate.clear()
        # A blip drops the reader's connection while it waits (the ACK's reply is lost).
        await client.client_kill_filter(_id=str(reader.popper._client_id))
        await other.send(channel, {"type": "m", "n": "x"})  # X, from another process
        release.set()  # the sender's pipeline retries B's push: B' (b's header) after X
        await send_b

        async def two() -> bool:
            return await client.llen(inbox) == 2

        await eventually(two, what="x, b' in the inbox")
        gate.set()  # the reader reconnects: re-sent ACK(2, header of b), read
        try:
            got = await receive(layer, channel)
        except TimeoutError:
            left = await client.lrange(inbox, 0, -1)
            pytest.fail(f"x was never delivered; the inbox now holds {left}")
        assert got["n"] == "x"
    finally:
        await client.aclose()


async def test_reader_reloads_scripts_when_an_earlier_reply_is_another_error(
    tmp_path: Path,
) -> None:
    """After a restart that kept the data (scripts gone) with Redis over ``maxmemory``, the
    reader's first round is [announce (SET: OOM), ACK (NOSCRIPT), LRANGE]. ``_refused`` looks
    at ``errors[0]`` only, the OOM, so it never reloads the scripts: every round goes the same
    way and nothing is delivered until some other client happens to run a script, although the
    ACK is ``allow-oom`` precisely so readers can drain a full Redis."""
    with redis_server(tmp_path) as server:
        layer = RedisChannelLayer(hosts=[server.url], prefix="review")
        sender = RedisChannelLayer(hosts=[server.url], prefix="review")
        client = redis.asyncio.Redis.from_url(server.url)
        try:
            channel = await layer.new_channel()
            reader, gate = gate_reader(layer)
            await sender.send(channel, {"type": "m", "n": 1})
            assert (await receive(layer, channel))["n"] == 1
            await eventually(lambda: blocked(client), what="the reader's blocking move")
            gate.clear()
            # "restart with data": the connection drops, the scripts are gone
            await client.client_kill_filter(_id=str(reader.popper._client_id))
            await sender.send(channel, {"type": "m", "n": 2})
            await client.script_flush()
            await client.config_set("maxmemory", 1)
            gate.set()
            assert (await receive(layer, channel, timeout=8))["n"] == 2
        finally:
            await client.config_set("maxmemory", 0)
            await layer.close()
            await sender.close()
            await client.aclose()


async def test_allow_oom_ack_runs_by_evalsha_under_maxmemory_on_7_0(tmp_path: Path) -> None:
    """Sanity check (expected to pass): the shebang flag is honoured by EVALSHA after SCRIPT
    LOAD on this Redis (7.0); a plain write is refused."""
    with redis_server(tmp_path) as server:
        client = redis.asyncio.Redis.from_url(server.url)
        try:
            await client.script_load(scripts.ACK.source)
            entry = b"s 9 p:1 c.p!1\nx"
            await client.rpush("i{p}", entry)
            await client.hset("c{p}", "c.p!1", 1)
            await client.config_set("maxmemory", 1)
            with pytest.raises(Exception, match="maxmemory"):
                await client.set("k", "v")
            reply = await client.execute_command(  # type: ignore[no-untyped-call]
                *scripts.ACK.command(
                    ("c{p}", "i{p}"), "", 1, b"s 9 p:1 c.p!1\n", 1, 1, 1000, "c.p!1", 1
                )
            )
            assert reply == 1
            assert await client.llen("i{p}") == 0
        finally:
            await client.config_set("maxmemory", 0)
            await client.aclose()


async def test_a_read_refused_with_no_ack_due_backs_off(tmp_path: Path) -> None:
    """``_refused(..., idle=not entries or not acked)``: when the read itself gets an error
    reply (``BUSY``; ``CLUSTERDOWN`` for a whole cluster outage, which also unblocks the
    waiting BLMOVE…) and no ACK was due (an idle reader), ``entries`` is the error object,
    which is truthy, so ``idle`` is False and the reader goes round again at once, without
    the ``max_backoff`` sleep the old code always took: every idle process hammers Redis."""
    with redis_server(tmp_path, "--busy-reply-threshold", "20") as server:
        layer = RedisChannelLayer(hosts=[server.url], prefix="review")
        client = redis.asyncio.Redis.from_url(server.url)
        busy = redis.asyncio.Redis.from_url(server.url)
        try:
            await layer.new_channel()
            reader, gate = gate_reader(layer)
            await eventually(lambda: blocked(client), what="the reader's blocking move")
            gate.clear()  # its wait ends empty (1 s); the next round, no ACK due, waits here

            async def at_gate() -> bool:
                return not await blocked(client)

            await eventually(at_gate, what="the reader's wait to end")
            rounds = 0
            run = reader.popper.read

            async def counted(commands: Any, **options: Any) -> Any:
                nonlocal rounds
                rounds += 1
                return await run(commands, **options)

            reader.popper.read = counted
            script = "local i = 0 while i < 150000000 do i = i + 1 end return 0"

            async def run_slow_script() -> Any:
                return await busy.eval(script, 0)

            slow = asyncio.create_task(run_slow_script())  # others get BUSY meanwhile
            await asyncio.sleep(0.2)
            gate.set()
            await slow
            # max_backoff is 2 s: a round or two, not hundreds
            assert rounds <= 3, f"{rounds} round trips in the ~1 s Redis was busy"
        finally:
            await layer.close()
            await client.aclose()
            await busy.aclose()
