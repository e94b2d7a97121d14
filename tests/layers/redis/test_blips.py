"""Connections cut while a reply is on the wire (``CLIENT KILL``): nothing handed out vanishes.

Each test runs its own Redis server and, again and again, pushes an entry and kills the
connection of the read it wakes up *in the same pipeline*: Redis serves the blocked read and
drops the client before the reply leaves, the worst moment for a reader. What was popped by
then must come back after the reader reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from channelworks.layers.codec import Codec
from channelworks.layers.redis import RedisChannelLayer
from tests.layers.redis.servers import redis_server

pytestmark = pytest.mark.services

ROUNDS = 15


async def blocked_clients(admin: Any) -> list[int]:
    """Ids of the clients blocked in a command now."""
    listing = await admin.execute_command("CLIENT", "LIST")
    text = listing.decode() if isinstance(listing, bytes) else str(listing)
    return [
        int(line.split("id=")[1].split()[0]) for line in text.splitlines() if " flags=b " in line
    ]


async def wait_blocked(admin: Redis, wanted: int | None = None) -> int:
    """Wait until a client (``wanted``, or any) is blocked; its id."""
    for _ in range(1000):
        blocked = await blocked_clients(admin)
        if blocked and (wanted is None or wanted in blocked):
            return wanted if wanted is not None else blocked[0]
        await asyncio.sleep(0.005)
    raise AssertionError("no reader blocked in Redis")


async def push_and_kill(admin: Redis, key: str, entry: bytes, victim: int) -> None:
    """RPUSH ``entry`` and kill ``victim`` in one write: Redis runs them back to back."""
    async with admin.pipeline(transaction=False) as pipeline:
        pipeline.rpush(key, entry)
        pipeline.execute_command("CLIENT", "KILL", "ID", victim)
        replies = await pipeline.execute()
    assert replies[1] == 1  # killed


def expires() -> int:
    return int(time.time() * 1000) + 60_000


async def test_a_reply_lost_with_the_inbox_readers_connection_comes_again(
    tmp_path: Path,
) -> None:
    with redis_server(tmp_path) as server:
        owner = RedisChannelLayer(hosts=[server.url])
        admin = Redis.from_url(server.url)
        codec = Codec()
        try:
            channel = await owner.new_channel()
            inbox = owner.keys.inbox(owner.pid)
            for n in range(ROUNDS):
                home = owner._links.home
                assert home is not None
                assert home.reader is not None
                victim = home.reader.popper._client_id
                if victim is None or victim not in await blocked_clients(admin):
                    victim = await wait_blocked(admin, None)
                entry = b"s %d - %s\n" % (expires(), channel.encode()) + codec.encode(
                    {"type": "m", "n": n}
                )
                await push_and_kill(admin, inbox, entry, victim)
                got = await asyncio.wait_for(owner.receive(channel), 10)
                assert got["n"] == n  # handed out, cut, and handed out again: once
            with contextlib.suppress(TimeoutError):  # and never twice
                extra = await asyncio.wait_for(owner.receive(channel), 0.5)
                raise AssertionError(f"delivered twice: {extra}")
            assert owner.stats.reconnects >= ROUNDS
        finally:
            await admin.aclose()
            await owner.close()


async def test_a_reply_lost_with_a_normal_receives_connection_comes_again(
    tmp_path: Path,
) -> None:
    with redis_server(tmp_path) as server:
        worker = RedisChannelLayer(hosts=[server.url])
        admin = Redis.from_url(server.url)
        codec = Codec()
        try:
            key = worker.keys.channel("jobs")
            got: list[int] = []
            for n in range(ROUNDS):
                receive = asyncio.create_task(worker.receive("jobs"))
                victim = await wait_blocked(admin)
                entry = b"%d\n" % expires() + codec.encode({"type": "job", "n": n})
                await push_and_kill(admin, key, entry, victim)
                got.append((await asyncio.wait_for(receive, 10))["n"])
            assert got == list(range(ROUNDS))
            with contextlib.suppress(TimeoutError):
                extra = await asyncio.wait_for(worker.receive("jobs"), 0.5)
                raise AssertionError(f"delivered twice: {extra}")
            assert worker.stats.lost == 0
        finally:
            await admin.aclose()
            await worker.close()
