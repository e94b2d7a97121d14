"""A Redis server that goes away mid-traffic and comes back on the same port."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

import pytest

from channelworks.layers.redis import RedisChannelLayer, RedisUnavailable
from tests.layers.redis.servers import cli, redis_server

pytestmark = pytest.mark.services


async def test_restart_mid_traffic_reconnects_and_counts_what_failed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with redis_server(tmp_path) as server:
        owner = RedisChannelLayer(hosts=[server.url], retry_timeout=0.3)
        sender = RedisChannelLayer(hosts=[server.url], retry_timeout=0.3)
        worker = RedisChannelLayer(hosts=[server.url], retry_timeout=0.3)
        jobs: asyncio.Task[dict[str, Any]] | None = None
        try:
            channel = await owner.new_channel()
            jobs = asyncio.create_task(worker.receive("jobs"))
            for n in range(20):
                await sender.send(channel, {"type": "before", "n": n})
            got = [await asyncio.wait_for(owner.receive(channel), 3) for _ in range(20)]
            assert [m["n"] for m in got] == list(range(20))

            with caplog.at_level(logging.WARNING, logger="channelworks.layers.redis"):
                await asyncio.to_thread(server.stop)
                with pytest.raises(RedisUnavailable):
                    await sender.send(channel, {"type": "during"})
                assert sender.stats.redis_errors == 1
                await asyncio.sleep(0.5)  # the reader and the worker notice
                await asyncio.to_thread(server.start)

                for _ in range(100):  # the sender works again as soon as Redis answers
                    dropped = sender.stats.dead_process
                    try:
                        await sender.send(channel, {"type": "after"})
                    except RedisUnavailable:
                        await asyncio.sleep(0.1)
                        continue
                    if sender.stats.dead_process == dropped:
                        break
                    # Redis is back empty and the owner has not said it is alive yet: the
                    # send was dropped like one to a dead process (counted, logged)
                    await asyncio.sleep(0.1)
                assert (await asyncio.wait_for(owner.receive(channel), 10))["type"] == "after"
                await sender.send("jobs", {"type": "job"})  # the waiting worker kept running
                assert (await asyncio.wait_for(jobs, 10))["type"] == "job"
                # Redis lost everything (no persistence); the owner said it is alive again
                # when its reader got back, so a new group reaches it.
                await owner.group_add("room", channel)
                await sender.group_send("room", {"type": "group.after"})
                assert (await asyncio.wait_for(owner.receive(channel), 10))["type"] == "group.after"
            assert owner.stats.reconnects >= 1
            logged = " ".join(r.getMessage() for r in caplog.records)
            assert "reconnecting" in logged
            assert "is back" in logged
        finally:
            if jobs is not None:
                jobs.cancel()
                with contextlib.suppress(BaseException):
                    await jobs
            for layer in (owner, sender, worker):
                await layer.close()


async def test_memberships_come_back_after_a_restart_without_persistence(
    tmp_path: Path,
) -> None:
    with redis_server(tmp_path) as server:
        owner = RedisChannelLayer(hosts=[server.url], process_timeout=1.5, retry_timeout=0.3)
        sender = RedisChannelLayer(hosts=[server.url], retry_timeout=0.3)
        try:
            channel = await owner.new_channel()
            await owner.group_add("room", channel)
            await asyncio.to_thread(server.stop)
            await asyncio.sleep(0.3)
            await asyncio.to_thread(server.start)  # empty: the group and alive keys are gone
            # the reader reconnects and the heartbeat re-adds the membership (ZADD XX never did)
            for _ in range(60):
                await asyncio.sleep(0.1)
                try:
                    await sender.group_send("room", {"type": "back"})
                except RedisUnavailable:
                    continue
                with contextlib.suppress(TimeoutError):
                    got = await asyncio.wait_for(owner.receive(channel), 0.2)
                    assert got["type"] == "back"
                    break
            else:
                raise AssertionError("the membership never came back after the restart")
        finally:
            await owner.close()
            await sender.close()


async def test_a_send_that_times_out_is_not_retried_into_a_duplicate(tmp_path: Path) -> None:
    with redis_server(tmp_path, "--enable-debug-command", "yes") as server:
        layer = RedisChannelLayer(
            hosts=[{"address": server.url, "socket_timeout": 0.3}], retry_timeout=5
        )
        try:
            await layer.send("dup", {"type": "warm"})
            assert (await layer.receive("dup"))["type"] == "warm"
            stall = asyncio.create_task(
                asyncio.to_thread(cli, server.port, "DEBUG", "SLEEP", "1.2")
            )
            await asyncio.sleep(0.1)
            with pytest.raises(RedisUnavailable, match="not retried"):
                await layer.send("dup", {"type": "stalled"})
            assert layer.stats.redis_errors == 1
            await stall
            got = [await asyncio.wait_for(layer.receive("dup"), 2)]
            with contextlib.suppress(TimeoutError):
                got.append(await asyncio.wait_for(layer.receive("dup"), 1))
            assert [m["type"] for m in got] == ["stalled"]  # it ran once, not twice
        finally:
            await layer.close()
