"""Topics across processes: two endpoints, each with its own layer (as two server processes
have), sharing one Redis or one RabbitMQ (the shared services at 127.0.0.1)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest

from channelworks.client import Socket
from channelworks.layers import channel_layers
from channelworks.layers.base import BaseChannelLayer
from channelworks.topics import TopicsConsumer, abroadcast, akick
from tests.layers.backends import (
    RABBITMQ_URL,
    REDIS_URL,
    delete_rabbitmq_names,
    rabbitmq_reachable,
    redis_reachable,
)
from tests.server.live import TIMEOUT
from tests.topics.apps import Room
from tests.topics.conftest import Serve

pytestmark = pytest.mark.services

BACKENDS: dict[str, tuple[str, dict[str, Any]]] = {
    "redis": ("channelworks.layers.redis.RedisChannelLayer", {"hosts": [REDIS_URL]}),
    "rabbitmq": ("channelworks.layers.rabbitmq.RabbitMQChannelLayer", {"host": RABBITMQ_URL}),
}


@pytest.fixture(params=sorted(BACKENDS))
async def layers(
    request: pytest.FixtureRequest, _no_configured_layers: None
) -> AsyncIterator[tuple[BaseChannelLayer, ...]]:
    backend, options = BACKENDS[request.param]
    if not (redis_reachable() if request.param == "redis" else rabbitmq_reachable()):
        pytest.skip(f"{request.param} is not reachable")
    prefix = f"test-topics-{secrets.token_hex(4)}"
    config = {"BACKEND": backend, "CONFIG": {**options, "prefix": prefix}}
    channel_layers.configure({"default": config, "a": config, "b": config})
    found = (channel_layers["a"], channel_layers["b"], channel_layers["default"])
    yield found[:2]
    queues: list[str] = []
    for layer in found:
        if request.param == "rabbitmq":
            queues += [layer.names.channel(c) for c in layer._declared]  # type: ignore[attr-defined]
        await layer.flush()
        await layer.close()
    if request.param == "rabbitmq":
        await delete_rabbitmq_names(prefix, queues)


async def two_sockets(serve: Serve) -> tuple[Socket, Socket]:
    sockets = []
    for alias in ("a", "b"):
        live = await serve(TopicsConsumer.as_asgi(topics=[Room], channel_layer_alias=alias))
        socket = Socket(live.ws("/"), push_timeout=TIMEOUT)
        await socket.connect()
        sockets.append(socket)
    return sockets[0], sockets[1]


async def test_a_broadcast_on_one_process_reaches_members_on_another(
    serve: Serve, layers: tuple[BaseChannelLayer, ...]
) -> None:
    one, two = await two_sockets(serve)
    try:
        here, there = one.topic("room:x", {"nick": "ada"}), two.topic("room:x", {"nick": "bob"})
        heard: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        there.on("said", heard.put_nowait)
        both = asyncio.Event()
        here.on("*", lambda _: both.set() if set(here.presence) == {"ada", "bob"} else None)
        await here.join()
        await there.join()
        await here.push("say", {"body": "across"})
        async with asyncio.timeout(TIMEOUT):
            assert await heard.get() == {"body": "across"}
            await both.wait()  # presence across processes
        assert here.position == there.position  # one log, in Redis
    finally:
        await one.close()
        await two.close()


async def test_a_client_resumes_on_another_process_from_the_redis_log(
    serve: Serve, layers: tuple[BaseChannelLayer, ...]
) -> None:
    one, two = await two_sockets(serve)
    try:
        first = one.topic("room:r")
        seen: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        first.on("said", seen.put_nowait)
        await first.join()
        await abroadcast("room:r", "said", {"n": 0}, layer=layers[0])
        async with asyncio.timeout(TIMEOUT):
            assert await seen.get() == {"n": 0}
        saved = first.position
        assert saved is not None
        await one.close()
        for n in (1, 2, 3):  # missed, sent from the other process
            await abroadcast("room:r", "said", {"n": n}, layer=layers[1])
        again = two.topic("room:r")
        again.position = saved
        got: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        again.on("said", got.put_nowait)
        await again.join()
        assert again.recovered is True
        await abroadcast("room:r", "said", {"n": 4}, layer=layers[0])  # live
        async with asyncio.timeout(TIMEOUT):
            assert [(await got.get())["n"] for _ in range(4)] == [1, 2, 3, 4]
    finally:
        await two.close()


async def test_a_kick_from_a_third_process_removes_the_sockets_on_both(
    serve: Serve, layers: tuple[BaseChannelLayer, ...]
) -> None:
    one, two = await two_sockets(serve)
    try:
        topics = [one.topic("room:k", {"nick": "ada"}), two.topic("room:k", {"nick": "bob"})]
        closed: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        for topic in topics:
            topic.on("close", closed.put_nowait)
            await topic.join()
        await akick("room:k", reason="closing", layer="default")  # the "default" process
        async with asyncio.timeout(TIMEOUT):
            assert [await closed.get(), await closed.get()] == [{"reason": "closing"}] * 2
        assert [t.state for t in topics] == ["closed", "closed"]
    finally:
        await one.close()
        await two.close()
