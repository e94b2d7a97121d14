"""Fixtures of the RabbitMQ layer tests: layers sharing one prefix, cleaned off the broker."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from channelworks.layers.rabbitmq import RabbitMQChannelLayer
from tests.layers.backends import (
    RABBITMQ_URL,
    delete_rabbitmq_names,
    rabbitmq_reachable,
    require_service,
)

MakeLayer = Callable[..., RabbitMQChannelLayer]


@pytest.fixture
def prefix() -> str:
    return f"test-{secrets.token_hex(6)}"


@pytest.fixture
def leftovers() -> set[str]:
    """Queues a test made outside its layers (another process's), deleted after it."""
    return set()


@pytest.fixture
async def make(prefix: str, leftovers: set[str]) -> AsyncIterator[MakeLayer]:
    """Layers sharing one prefix (as processes of one site would); afterwards they are flushed
    and closed, and the prefix's exchange and the queues they declared are deleted."""
    require_service("RabbitMQ", rabbitmq_reachable())
    made: list[RabbitMQChannelLayer] = []

    def build(**options: Any) -> RabbitMQChannelLayer:
        options.setdefault("host", RABBITMQ_URL)
        layer = RabbitMQChannelLayer(prefix=prefix, **options)
        made.append(layer)
        return layer

    yield build
    queues = set(leftovers)
    for layer in made:
        await layer.flush()
        queues.update(layer.names.channel(channel) for channel in layer._declared)
        await layer.close()
    await delete_rabbitmq_names(prefix, queues)
