"""A Redis server that goes away mid-traffic and comes back on the same port."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

import pytest

from channelworks.layers.redis import RedisChannelLayer, RedisUnavailable
from tests.layers.redis.servers import redis_server

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
                    try:
                        await sender.send(channel, {"type": "after"})
                        break
                    except RedisUnavailable:
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
