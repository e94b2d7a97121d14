"""Configuration and failure without a server: settings, compat names, Redis unreachable."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys

import pytest

from channelworks.exceptions import InvalidChannelLayerError
from channelworks.layers import channel_layers
from channelworks.layers.redis import RedisChannelLayer, RedisUnavailable
from tests.layers.redis.servers import free_port


def test_configured_like_channels_redis() -> None:
    channel_layers.configure(
        {
            "default": {
                "BACKEND": "channelworks.layers.redis.RedisPubSubChannelLayer",
                "CONFIG": {
                    "hosts": [("127.0.0.1", 6379), {"address": "redis://127.0.0.1:6379/1"}],
                    "prefix": "asgi",
                    "capacity": 10,
                    "channel_capacity": {"http.request": 200},
                    "serializer_format": "msgpack",
                    "symmetric_encryption_keys": ["a key of at least 32 bytes, really!"],
                },
            },
            "bad": {
                "BACKEND": "channelworks.layers.redis.RedisChannelLayer",
                "CONFIG": {"hosts": [("127.0.0.1", 6379)], "no_such_option": 1},
            },
        }
    )
    layer = channel_layers["default"]
    assert isinstance(layer, RedisChannelLayer)
    assert layer.get_capacity("http.request") == 200
    assert len(layer.hosts) == 2
    assert layer.codec.encrypted
    with pytest.raises(InvalidChannelLayerError, match="no_such_option"):
        channel_layers["bad"]


async def test_unreachable_redis_raises_redis_unavailable_counts_and_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    layer = RedisChannelLayer(hosts=[f"redis://127.0.0.1:{free_port()}"], retry_timeout=0.3)
    try:
        with caplog.at_level(logging.ERROR, logger="channelworks.layers.redis"):
            with pytest.raises(RedisUnavailable) as info:
                await layer.send("somewhere", {"type": "lost"})
            with pytest.raises(RedisUnavailable):
                await layer.group_send("room", {"type": "lost"})
        assert info.value.operation == "send"
        assert info.value.target == "somewhere"
        assert layer.stats.redis_errors == 2
        assert len([r for r in caplog.records if "unavailable" in r.getMessage()]) == 2
    finally:
        await layer.close()


@pytest.mark.parametrize(
    "options",
    [
        {"serializer_format": "json"},
        {"process_timeout": 0},
        {"refresh_interval": 100, "process_timeout": 60},
        {"prefix": "bad prefix"},
        {"capacity": 0},
    ],
)
def test_bad_options_are_refused(options: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        RedisChannelLayer(**options)  # type: ignore[arg-type]


def test_channels_redis_import_paths_resolve_to_this_layer() -> None:
    code = (
        "import channelworks.compat; channelworks.compat.install()\n"
        "from channels_redis.core import RedisChannelLayer as Core\n"
        "from channels_redis.pubsub import RedisPubSubChannelLayer as PubSub\n"
        "from channelworks.layers.redis import RedisChannelLayer\n"
        "assert Core is PubSub is RedisChannelLayer\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr.decode()


async def test_consumers_start_while_redis_is_unreachable(caplog: pytest.LogCaptureFixture) -> None:
    layer = RedisChannelLayer(hosts=[f"redis://127.0.0.1:{free_port()}"], retry_timeout=0.2)
    try:
        with caplog.at_level(logging.WARNING, logger="channelworks.layers.redis"):
            channel = await layer.new_channel()
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(layer.receive(channel), 0.3)  # waits, does not fail
        assert "cannot reach Redis" in caplog.text
        await layer.send(channel, {"type": "in.memory"})  # its own channel: no Redis needed
        assert (await asyncio.wait_for(layer.receive(channel), 1))["type"] == "in.memory"
        with pytest.raises(RedisUnavailable):
            await layer.group_add("room", channel)
    finally:
        await layer.close()
