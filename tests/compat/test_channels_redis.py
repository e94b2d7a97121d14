"""channels_redis' names under compat, and the layer behaviour its users rely on.

Written from channels_redis' documentation and public API: the modules users import
(``core``, ``pubsub``, ``serializers``, ``utils``), the layer methods they call
(``close_pools``, ``serialize``...), and a layer used from several event loops in turn
(``async_to_sync`` in views and sync tests).
"""

from __future__ import annotations

import asyncio
import importlib
import secrets
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from cryptography.fernet import InvalidToken

from channelworks.exceptions import ChannelFull, ForeignChannel
from channelworks.layers.redis import RedisChannelLayer
from tests.layers.backends import REDIS_URL, redis_reachable, require_service

pytestmark = pytest.mark.services


def channels_redis(module: str) -> Any:
    """``channels_redis.<module>`` through the alias (imported at run time, as a user would)."""
    return importlib.import_module(f"channels_redis.{module}")


@pytest.fixture
def make_layer() -> Any:
    require_service("Redis", redis_reachable())
    prefix = f"test-{secrets.token_hex(6)}"
    made: list[RedisChannelLayer] = []

    def make(**options: Any) -> RedisChannelLayer:
        layer = RedisChannelLayer(hosts=[REDIS_URL], prefix=prefix, **options)
        made.append(layer)
        return layer

    yield make
    for layer in made:
        async_to_sync(layer.flush)()
        async_to_sync(layer.close)()


def test_the_modules_channels_redis_users_import() -> None:
    core, utils = channels_redis("core"), channels_redis("utils")
    assert core.ChannelFull is ChannelFull
    assert core.RedisChannelLayer is RedisChannelLayer
    assert channels_redis("pubsub").RedisPubSubChannelLayer is RedisChannelLayer
    registry = channels_redis("serializers").registry
    assert registry.get_serializer("msgpack").serialize({"a": 1}) == b"\x81\xa1a\x01"
    assert utils._consistent_hash("key_one", 10) == 6
    assert utils.decode_hosts([("h", 1), "redis://x"]) == [
        {"host": "h", "port": 1},
        {"address": "redis://x"},
    ]
    with pytest.raises(ValueError, match="list"):
        utils.decode_hosts("redis://x")


def test_serializers_register_build_and_round_trip_encrypted() -> None:
    serializers = channels_redis("serializers")
    registry = serializers.SerializersRegistry()
    with pytest.raises(AssertionError):  # channels_redis' class for a bad serializer
        registry.register_serializer("bad", object)
    with pytest.raises(serializers.SerializerDoesNotExist):
        registry.get_serializer("bad")
    message = {"a": True, "b": None, "c": [1, "x"]}
    for kind in (serializers.MsgPackSerializer, serializers.JSONSerializer):
        serializer = kind(symmetric_encryption_keys=["k1", "k2"], random_prefix_length=5)
        data = serializer.serialize(message)
        assert data != serializer.serialize(message)  # random prefix, fresh token
        assert serializer.deserialize(data) == message
        rotated = kind(symmetric_encryption_keys=["k2"], random_prefix_length=5)
        with pytest.raises(InvalidToken):
            rotated.deserialize(data)  # encrypted with k1, the first key


async def test_layer_names_map_to_ours(make_layer: Any) -> None:
    layer = make_layer()
    channel = await layer.new_channel()
    assert channel.split(".", 1)[1].startswith(layer.client_prefix + "!")
    assert layer.deserialize(layer.serialize({"type": "x", "n": 1})) == {"type": "x", "n": 1}
    assert layer._group_key("room") == layer.keys.group("room").encode()
    assert list(layer._layers) == [asyncio.get_running_loop()]
    with pytest.raises(AssertionError):  # channels_redis raises AssertionError for it
        await layer.receive("not-ours!local")
    with pytest.raises(ForeignChannel):
        await layer.receive("not-ours!local")


async def test_closed_command_connections_reconnect(make_layer: Any) -> None:
    layer = make_layer()
    a, b = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("g", a)
    await channels_redis("utils")._close_redis(
        layer._shards[0]._redis
    )  # the server side of our pipelines goes away
    await layer.group_add("g", b)
    await layer.group_send("g", {"type": "m"})
    assert (await asyncio.wait_for(layer.receive(a), 3))["type"] == "m"
    assert (await asyncio.wait_for(layer.receive(b), 3))["type"] == "m"


def test_a_layer_used_from_loop_after_loop_keeps_its_channels(make_layer: Any) -> None:
    """Each async_to_sync call runs its own loop; the layer's channels and messages outlive
    them, and a send to its own channel while no loop of its runs is delivered, not dropped
    as if the process were dead."""
    layer = make_layer()

    async def send_and_close(channel: str, message: dict[str, Any]) -> None:
        await layer.send(channel, message)
        await layer.close_pools()

    first = async_to_sync(layer.new_channel)()
    second = async_to_sync(layer.new_channel)()
    async_to_sync(send_and_close)(first, {"type": "one"})
    async_to_sync(send_and_close)(second, {"type": "two"})
    assert layer.stats.dead_process == 0
    assert async_to_sync(layer.receive)(second) == {"type": "two"}
    assert async_to_sync(layer.receive)(first) == {"type": "one"}


def test_a_loop_closed_by_hand_takes_the_reader_with_it(make_layer: Any) -> None:
    """``run_until_complete`` then ``close()`` (no ``asyncio.run``): the reader and keeper end
    with the loop instead of being destroyed pending by the garbage collector later."""
    layer = make_layer()
    loop = asyncio.new_event_loop()
    loop.run_until_complete(layer.new_channel())
    home = layer._links.home
    assert home is not None
    assert home.reader_task is not None
    tasks = [home.reader_task, home.keeper_task]
    loop.close()
    assert layer._links.home is None
    assert all(task is not None and task.done() for task in tasks)
