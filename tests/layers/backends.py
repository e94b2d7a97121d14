"""The backends the shared layer-contract suite runs against.

Each entry builds a fresh layer from contract options. A backend whose service is missing
skips, unless ``CHANNELWORKS_REQUIRE_SERVICES=1`` (CI), where a missing service fails the run.
"""

from __future__ import annotations

import functools
import os
import secrets
import socket
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

import pytest

from channelworks.layers import BaseChannelLayer, InMemoryChannelLayer

LayerFactory = Callable[..., BaseChannelLayer]


def require_service(name: str, available: bool) -> None:
    """Skip the test if ``name`` is not reachable, or fail it when services are required."""
    if available:
        return
    if os.environ.get("CHANNELWORKS_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{name} is required (CHANNELWORKS_REQUIRE_SERVICES=1) but not reachable")
    pytest.skip(f"{name} is not reachable")


def memory(**options: Any) -> BaseChannelLayer:
    return InMemoryChannelLayer(**options)


#: the Redis server the suite uses (tests/layers/redis/ starts extra ones on free ports)
REDIS_URL = os.environ.get("CHANNELWORKS_REDIS_URL", "redis://127.0.0.1:6379/0")


@functools.cache
def reachable(url: str, default_port: int) -> bool:
    """Whether a TCP connection to ``url``'s host and port (or ``default_port``) opens."""
    parts = urlsplit(url)
    try:
        socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 1
        ).close()
    except OSError:
        return False
    return True


def redis_reachable(url: str = REDIS_URL) -> bool:
    return reachable(url, 6379)


def redis(**options: Any) -> BaseChannelLayer:
    """A Redis layer with a prefix of its own, so tests never see each other's keys."""
    require_service("Redis", redis_reachable())
    from channelworks.layers.redis import RedisChannelLayer

    options.setdefault("prefix", f"test-{secrets.token_hex(6)}")
    options.setdefault("hosts", [REDIS_URL])
    return RedisChannelLayer(**options)


_SERVER = REDIS_URL.rsplit("/", 1)[0]

#: the RabbitMQ server the suite uses (guest/guest on the default virtual host)
RABBITMQ_URL = os.environ.get("CHANNELWORKS_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")


def rabbitmq_reachable(url: str = RABBITMQ_URL) -> bool:
    return reachable(url, 5672)


async def delete_rabbitmq_names(prefix: str, queues: Iterable[str] = ()) -> None:
    """Delete a test prefix's groups exchange and ``queues`` (queue names) from the broker.

    Queues expire by themselves (``x-expires``) but exchanges stay forever, one per test, so
    the tests delete what they made once every layer of the prefix is closed.
    """
    import aiormq

    connection = await aiormq.connect(RABBITMQ_URL)
    try:
        channel = await connection.channel()
        await channel.exchange_delete(f"{prefix}.groups")
        for queue in sorted(set(queues)):
            await channel.queue_delete(queue)
    finally:
        await connection.close()


def rabbitmq(**options: Any) -> BaseChannelLayer:
    """A RabbitMQ layer with a prefix of its own, so tests never see each other's queues; a
    prefix made here is deleted from the broker when the layer closes."""
    require_service("RabbitMQ", rabbitmq_reachable())
    from channelworks.layers.rabbitmq import RabbitMQChannelLayer

    class OwnPrefixLayer(RabbitMQChannelLayer):
        async def close(self) -> None:
            queues = [self.names.channel(channel) for channel in self._declared]
            logs = self.logs  # the history streams this layer used (a flush deletes them)
            for group in list(logs.expiring):
                queues += [logs._stream(group), logs._epoch_queue(group), logs._ready_queue(group)]
            await super().close()
            await delete_rabbitmq_names(self.prefix, queues)

    options.setdefault("host", RABBITMQ_URL)
    if "prefix" in options:  # shared with other layers: theirs to clean up
        return RabbitMQChannelLayer(**options)
    return OwnPrefixLayer(prefix=f"test-{secrets.token_hex(6)}", **options)


BACKENDS: dict[str, LayerFactory] = {
    "memory": memory,
    "redis": redis,
    # own-channel sends through Redis and the inbox reader, not straight into memory
    "redis-inbox": functools.partial(redis, deliver_locally=False),
    # two shards (two databases of the server): group_send takes the two-round-trip path
    "redis-sharded": functools.partial(redis, hosts=[f"{_SERVER}/0", f"{_SERVER}/1"]),
    "rabbitmq": rabbitmq,
    # own-channel sends through RabbitMQ and the process reader, not straight into memory
    "rabbitmq-broker": functools.partial(rabbitmq, deliver_locally=False),
}
