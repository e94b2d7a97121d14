"""Fixtures of the Redis layer tests: layers with a prefix of their own, closed afterwards."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from channelworks.layers.redis import RedisChannelLayer
from tests.layers.backends import REDIS_URL, redis_reachable, require_service

MakeRedisLayer = Callable[..., RedisChannelLayer]


@pytest.fixture
def redis_url() -> str:
    """The suite's Redis (127.0.0.1:6379 unless CHANNELWORKS_REDIS_URL says otherwise)."""
    require_service("Redis", redis_reachable())
    return REDIS_URL


@pytest.fixture
def prefix() -> str:
    return f"test-{secrets.token_hex(6)}"


@pytest.fixture
async def make_redis_layer(redis_url: str, prefix: str) -> AsyncIterator[MakeRedisLayer]:
    """Build layers sharing one fresh prefix (so they see each other); flush and close them."""
    made: list[RedisChannelLayer] = []

    def make(**options: Any) -> RedisChannelLayer:
        options.setdefault("hosts", [redis_url])
        options.setdefault("prefix", prefix)
        layer = RedisChannelLayer(**options)
        made.append(layer)
        return layer

    yield make
    if made:
        await made[0].flush()
    for layer in made:
        await layer.close()
