"""A layer that finds its master through Sentinel, and follows it across a failover."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import pytest

from channelworks.layers.redis import RedisChannelLayer, RedisUnavailable
from tests.layers.redis.servers import RedisServer, cli, free_port, sentinel_setup, wait_until

pytestmark = pytest.mark.services


async def receive(layer: RedisChannelLayer, channel: str, timeout: float = 5) -> dict[str, Any]:
    return await asyncio.wait_for(layer.receive(channel), timeout)


async def test_layers_configured_with_sentinels_talk_through_the_master(tmp_path: Path) -> None:
    with sentinel_setup(tmp_path) as (master_port, sentinel_port):
        first = RedisChannelLayer(
            sentinels=[("127.0.0.1", sentinel_port)], master_name="mymaster", prefix="s"
        )
        second = RedisChannelLayer(  # the channels_redis spelling
            hosts=[{"sentinels": [("127.0.0.1", sentinel_port)], "master_name": "mymaster"}],
            prefix="s",
        )
        try:
            channel = await first.new_channel()
            await first.group_add("room", channel)
            await second.send(channel, {"type": "direct"})
            await second.group_send("room", {"type": "group"})
            await second.send("work", {"type": "job"})
            assert (await receive(first, channel))["type"] == "direct"
            assert (await receive(first, channel))["type"] == "group"
            assert (await receive(first, "work"))["type"] == "job"
            assert cli(master_port, "exists", first.keys.group("room")) == "1"
        finally:
            await first.flush()
            for layer in (first, second):
                await layer.close()


async def test_a_failover_is_followed(tmp_path: Path) -> None:
    with sentinel_setup(tmp_path) as (master_port, sentinel_port):
        replica = RedisServer(free_port(), tmp_path, "--replicaof", "127.0.0.1", str(master_port))
        try:
            replica.start()
            wait_until(
                lambda: "master_link_status:up" in cli(replica.port, "info", "replication"),
                what="the replica to sync",
            )
            wait_until(
                lambda: cli(sentinel_port, "sentinel", "replicas", "mymaster") != "",
                what="Sentinel to see the replica",
            )
            options: dict[str, Any] = {
                "sentinels": [("127.0.0.1", sentinel_port)],
                "master_name": "mymaster",
                "prefix": "f",
                "retry_timeout": 1.0,
            }
            owner, sender = RedisChannelLayer(**options), RedisChannelLayer(**options)
            try:
                channel = await owner.new_channel()
                await sender.send(channel, {"type": "before"})
                assert (await receive(owner, channel))["type"] == "before"
                # Sentinel accepts FAILOVER once it has fresh INFO from the replica (it asks
                # every 10 s): ask until it is done.
                deadline = time.monotonic() + 40
                while cli(sentinel_port, "sentinel", "get-master-addr-by-name", "mymaster").split()[
                    -1:
                ] != [str(replica.port)]:
                    assert time.monotonic() < deadline, "Sentinel did not fail over"
                    cli(sentinel_port, "sentinel", "failover", "mymaster")
                    await asyncio.sleep(1)
                for _ in range(100):  # sends find the new master (READONLY -> reconnect)
                    with contextlib.suppress(RedisUnavailable):
                        await sender.send(channel, {"type": "after"})
                        break
                    await asyncio.sleep(0.2)
                assert (await receive(owner, channel, timeout=20))["type"] == "after"
                assert cli(replica.port, "role").splitlines()[0] == "master"
            finally:
                for layer in (owner, sender):
                    await layer.close()
        finally:
            replica.stop()
