"""Churn: 5,000 clients connect, join a group, leave it and go; nothing may stay behind.

Each backend runs the same cycles (50 clients at a time, ten groups shared between them, as
a busy site's sockets come and go) and is then checked for what it still holds: in the layer
(groups, members, bindings) and in its broker (Redis keys, RabbitMQ bindings and queues).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from typing import Any

import pytest
import redis.asyncio

from channelworks.layers import BaseChannelLayer, InMemoryChannelLayer
from tests.layers import backends
from tests.layers.backends import REDIS_URL, require_service

pytestmark = pytest.mark.services

CYCLES = 5000
CLIENTS = 50
GROUPS = 10


async def churn(layer: BaseChannelLayer) -> None:
    """CYCLES connect / group_add / group_send / group_discard / disconnect cycles."""

    async def client(k: int) -> None:
        for i in range(CYCLES // CLIENTS):
            channel = await layer.new_channel()
            group = f"room-{(k + i) % GROUPS}"
            await layer.group_add(group, channel)
            if i % 10 == 0:  # the group works while it churns
                await layer.group_send(group, {"type": "room.message"})
                assert (await asyncio.wait_for(layer.receive(channel), 10))["type"]
            await layer.group_discard(group, channel)

    await asyncio.gather(*(client(k) for k in range(CLIENTS)))


def left_in_memory(layer: InMemoryChannelLayer) -> list[str]:
    return [*layer.group_names(), *(g for g in layer._groups if layer._groups[g])]


async def test_memory_churn_leaves_nothing() -> None:
    now = [1000.0]
    layer = InMemoryChannelLayer(clock=lambda: now[0])
    await churn(layer)
    assert left_in_memory(layer) == []
    assert layer._groups == {}
    # Group messages to clients that left unread wait for their expiry, then go; a channel
    # read since the last sweep is kept for one more (its reader may be back).
    now[0] += layer.expiry + 1
    layer.sweep()
    layer.sweep()
    assert layer._channels == {}
    assert layer.stats.expired > 0
    await layer.close()


async def test_redis_churn_leaves_nothing() -> None:
    layer: Any = backends.redis()
    client: Any = redis.asyncio.Redis.from_url(REDIS_URL)
    try:
        await churn(layer)
        assert left_in_memory(layer.local) == []
        kinds = {key.decode().split(":")[1] async for key in client.scan_iter(f"{layer.prefix}:*")}
        # the process's liveness, the server's epoch, the reader's bookkeeping: nothing else
        assert kinds <= {"alive", "epoch", "count"}, kinds
        await layer.close()
        left = [key async for key in client.scan_iter(f"{layer.prefix}:*")]
        for key in left:  # what stays after close expires by itself
            assert await client.pttl(key) > 0, key
        assert {key.decode().split(":")[1] for key in left} <= {"epoch", "count"}
    finally:
        await layer.close()
        await client.aclose()


def rabbitmqctl(*args: str) -> list[list[str]]:
    done = subprocess.run(
        ["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=30, check=True
    )
    return [line.split("\t") for line in done.stdout.splitlines() if line.strip()]


async def test_rabbitmq_churn_leaves_nothing() -> None:
    layer: Any = backends.rabbitmq()
    require_service("rabbitmqctl", shutil.which("rabbitmqctl") is not None)
    prefix = layer.prefix
    try:
        await churn(layer)
        assert layer.bindings.members == {}
        assert layer.bindings.bound == set()
        bindings = await asyncio.to_thread(
            rabbitmqctl, "list_bindings", "source_name", "destination_name", "routing_key"
        )
        assert [b for b in bindings if b[0] == f"{prefix}.groups"] == []
        await layer.close()
        queues = await asyncio.to_thread(rabbitmqctl, "list_queues", "name")
        assert [q for q in queues if q[0].startswith(f"{prefix}.")] == []
    finally:
        await layer.close()
