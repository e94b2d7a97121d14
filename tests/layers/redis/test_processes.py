"""Two OS processes on one Redis: point to point, groups, shared channels, death."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio

from channelworks.layers.redis import RedisChannelLayer
from channelworks.layers.redis.keys import process_of
from tests.layers.redis.conftest import MakeRedisLayer

pytestmark = pytest.mark.services

ROOT = Path(__file__).resolve().parents[3]


class Peer:
    def __init__(self, process: asyncio.subprocess.Process, channel: str) -> None:
        self.process = process
        self.channel = channel


@contextlib.asynccontextmanager
async def peer(
    url: str, prefix: str, group: str, process_timeout: float = 60
) -> AsyncIterator[Peer]:
    """Run tests/layers/redis/peer.py in a process of its own; it is gone after the block."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.layers.redis.peer",
        url,
        prefix,
        group,
        str(process_timeout),
        cwd=ROOT,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 20)
        assert b"!" in line, f"peer did not start: {line!r}"
        yield Peer(process, line.decode().strip())
    finally:
        if process.returncode is None:
            process.kill()
        await asyncio.wait_for(process.communicate(), 10)


async def receive(layer: RedisChannelLayer, channel: str, timeout: float = 5) -> dict[str, Any]:
    return await asyncio.wait_for(layer.receive(channel), timeout)


async def test_point_to_point_groups_and_order_between_processes(
    make_redis_layer: MakeRedisLayer, redis_url: str, prefix: str
) -> None:
    layer = make_redis_layer()
    mine = await layer.new_channel()
    await layer.group_add("room", mine)
    async with peer(redis_url, prefix, "room") as other:
        await layer.send(other.channel, {"type": "ping", "n": 7, "reply_to": mine})
        pong = await receive(layer, mine)
        assert pong["type"] == "pong"
        assert pong["n"] == 7
        assert pong["pid"] != layer.pid

        await layer.group_send("room", {"type": "room.message", "text": "hi", "reply_to": mine})
        got = sorted([(await receive(layer, mine))["type"] for _ in range(2)])
        assert got == ["ack", "room.message"]  # we got it, and so did the other process

        await layer.send(other.channel, {"type": "burst", "count": 50, "reply_to": mine})
        assert [(await receive(layer, mine))["n"] for _ in range(50)] == list(range(50))

        await layer.send(other.channel, {"type": "stop"})
        assert await asyncio.wait_for(other.process.wait(), 10) == 0


async def test_two_processes_share_a_normal_channel(
    make_redis_layer: MakeRedisLayer, redis_url: str, prefix: str
) -> None:
    sender = make_redis_layer()
    worker = make_redis_layer()
    replies = await sender.new_channel()
    async with peer(redis_url, prefix, "nobody") as other:
        handled_here: list[int] = []

        async def work() -> None:
            while True:
                job = await worker.receive("work")
                handled_here.append(job["n"])
                await worker.send(job["reply_to"], {"type": "done", "n": job["n"], "pid": "here"})
                await asyncio.sleep(0.01)  # let the other process take its share

        task = asyncio.create_task(work())
        try:
            for n in range(40):
                await sender.send("work", {"type": "job", "n": n, "reply_to": replies})
            done = [await receive(sender, replies) for _ in range(40)]
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert sorted(d["n"] for d in done) == list(range(40))  # each job exactly once
        by = {d["pid"] for d in done}
        assert "here" in by
        assert by - {"here"}, "the other process took no job"
        await sender.send(other.channel, {"type": "stop"})


async def test_a_killed_process_leaves_no_member_after_process_timeout(
    make_redis_layer: MakeRedisLayer, redis_url: str, prefix: str
) -> None:
    layer = make_redis_layer(process_timeout=1)
    mine = await layer.new_channel()
    await layer.group_add("room", mine)
    client: Any = redis.asyncio.Redis.from_url(redis_url)
    group_key = layer.keys.group("room")
    try:
        async with peer(redis_url, prefix, "room", process_timeout=1) as other:
            # a group holds each process with members of its own once, as "@pid"
            members = {m.decode() for m in await client.zrange(group_key, 0, -1)}
            theirs = f"@{process_of(other.channel)}"
            assert members == {f"@{layer.pid}", theirs}
            other.process.kill()  # no goodbye: its alive key and memberships just stop
            await asyncio.wait_for(other.process.wait(), 10)
            for _ in range(100):
                await layer.group_send("room", {"type": "room.message", "text": "anyone?"})
                members = {m.decode() for m in await client.zrange(group_key, 0, -1)}
                if theirs not in members:
                    break
                await asyncio.sleep(0.1)
            assert members == {f"@{layer.pid}"}  # ours is refreshed; the dead one lapsed
    finally:
        await client.aclose()
    while layer.receive_nowait(mine) is not None:
        pass


async def test_close_removes_the_process_from_groups_at_once(
    make_redis_layer: MakeRedisLayer, redis_url: str
) -> None:
    leaving = make_redis_layer()
    staying = make_redis_layer()
    gone = await leaving.new_channel()
    here = await staying.new_channel()
    await leaving.group_add("room", gone)
    await staying.group_add("room", here)
    await leaving.close()
    await staying.group_send("room", {"type": "after.close"})
    assert (await receive(staying, here))["type"] == "after.close"
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        assert not await client.exists(staying.keys.inbox(leaving.pid))
    finally:
        await client.aclose()
