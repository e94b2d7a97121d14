"""Faults with real servers: Redis paused past the timeouts, a server process killed.

- ``DEBUG SLEEP`` (Redis alive but answering nothing) for longer than ``socket_timeout``: a
  send raises ``RedisUnavailable`` at once, not retried (it may have run), counted; a queued
  group send is counted and logged; the readers carry on, nobody is taken for dead (the pause
  is shorter than ``process_timeout``) and everything works again afterwards.
- SIGKILL of a server process whose clients are in groups: no goodbye. Other processes stop
  sending to it within its liveness timeout (sends dropped and counted, not waited on), and
  its groups drop it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio

from channelworks.layers.redis import RedisChannelLayer, RedisUnavailable
from channelworks.layers.redis.keys import process_of
from tests.layers.redis.conftest import MakeRedisLayer
from tests.layers.redis.servers import cli, redis_server
from tests.layers.redis.test_processes import peer

pytestmark = pytest.mark.services


async def test_redis_paused_past_the_timeouts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with redis_server(tmp_path, "--enable-debug-command", "yes") as server:
        options: dict[str, Any] = {
            "hosts": [{"address": server.url, "socket_timeout": 0.3}],
            "retry_timeout": 0.5,
            "process_timeout": 6,
        }
        owner = RedisChannelLayer(**options)
        sender = RedisChannelLayer(**options)
        try:
            channel = await owner.new_channel()
            await owner.group_add("room", channel)
            await sender.new_channel()  # a server's layer: its group sends are queued
            await sender.send(channel, {"type": "before"})
            assert (await asyncio.wait_for(owner.receive(channel), 5))["type"] == "before"

            with caplog.at_level(logging.WARNING, logger="channelworks.layers.redis"):
                pause = asyncio.create_task(
                    asyncio.to_thread(cli, server.port, "DEBUG", "SLEEP", "2")
                )
                await asyncio.sleep(0.2)
                with pytest.raises(RedisUnavailable, match="not retried"):
                    await sender.send(channel, {"type": "during.send"})
                await sender.group_send("room", {"type": "during.group"})  # queued: returns
                await pause
                # after the pause: the queued one was counted (it may have run all the same)
                for _ in range(100):
                    if not sender._queue:
                        break
                    await asyncio.sleep(0.05)
                assert sender.stats.redis_errors + sender.stats.lost >= 2

                await sender.send(channel, {"type": "after.send"})
                await sender.group_send("room", {"type": "after.group"})
                got: list[str] = []
                while not {"after.send", "after.group"} <= set(got):
                    got.append((await asyncio.wait_for(owner.receive(channel), 10))["type"])
            # Each message at most once (a timed-out one may have run: not sent again), in
            # order; nobody was taken for dead.
            assert len(got) == len(set(got))
            assert got[-2:] == ["after.send", "after.group"]
            assert owner.stats.dead_process == sender.stats.dead_process == 0
            assert sender.stats.dead_members == 0
            assert owner.stats.redis_restarts == sender.stats.redis_restarts == 0
            assert "not retried" in caplog.text
        finally:
            await owner.close()
            await sender.close()


async def test_a_process_killed_with_sigkill_is_dropped_within_its_timeout(
    make_redis_layer: MakeRedisLayer, redis_url: str, prefix: str
) -> None:
    layer = make_redis_layer(process_timeout=1)
    mine = await layer.new_channel()
    await layer.group_add("room", mine)
    client: Any = redis.asyncio.Redis.from_url(redis_url)
    try:
        async with peer(redis_url, prefix, "room", process_timeout=1) as other:
            theirs = other.channel
            pid = process_of(theirs)
            await layer.send(theirs, {"type": "ping", "n": 1, "reply_to": mine})
            assert (await asyncio.wait_for(layer.receive(mine), 5))["type"] == "pong"
            other.process.kill()  # SIGKILL: no goodbye
            await asyncio.wait_for(other.process.wait(), 10)
            # Within its liveness timeout (1 s) the process counts as dead: sends to its
            # channels are dropped and counted at once, not queued for nobody.
            for _ in range(60):
                if not await client.exists(layer.keys.alive(pid)):
                    break
                await asyncio.sleep(0.05)
            assert not await client.exists(layer.keys.alive(pid))
            dropped = layer.stats.dead_process
            for n in range(20):  # none waits: each is dropped by the script at once
                await asyncio.wait_for(layer.send(theirs, {"type": "ping", "n": n}), 2)
            assert layer.stats.dead_process == dropped + 20
            assert not await client.exists(layer.keys.inbox(pid))
            # A group send skips it and takes it out of the group; ours still get it.
            await asyncio.wait_for(layer.group_send("room", {"type": "room.message"}), 2)
            got = await asyncio.wait_for(layer.receive(mine), 5)
            assert got["type"] == "room.message"
            for _ in range(40):
                members = {m.decode() for m in await client.zrange(layer.keys.group("room"), 0, -1)}
                if f"@{pid}" not in members:
                    break
                await asyncio.sleep(0.05)
            assert members == {f"@{layer.pid}"}
    finally:
        await client.aclose()
    with contextlib.suppress(Exception):
        while layer.receive_nowait(mine) is not None:
            pass
