"""docs/topics.md: the tutorial's server code runs as written, against real sockets."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import AnonymousUser

from channelworks.client import JoinError, PushError, Socket
from channelworks.layers import InMemoryChannelLayer
from channelworks.testing import WebsocketCommunicator
from channelworks.topics import TopicsConsumer
from channelworks.types import ASGIApp, Receive, Scope, Send
from tests.server.live import TIMEOUT
from tests.topics.conftest import Serve

DOC = Path(__file__).parent.parent.parent / "docs" / "topics.md"


def block(marker: str) -> dict[str, Any]:
    """Execute the python block of docs/topics.md that contains ``marker``."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    (code,) = [b for b in blocks if marker in b]
    namespace: dict[str, Any] = {"__name__": "docs_topics"}
    exec(compile(code, str(DOC), "exec"), namespace)
    return namespace


def anonymous(app: ASGIApp) -> ASGIApp:
    """What AuthMiddlewareStack gives a visitor without a session."""

    async def with_user(scope: Scope, receive: Receive, send: Send) -> None:
        await app({**scope, "user": AnonymousUser()}, receive, send)

    return with_user


async def test_the_tutorial_room(serve: Serve, layer: InMemoryChannelLayer) -> None:
    room_class = block("class Room(Topic)")["Room"]
    live = await serve(anonymous(TopicsConsumer.as_asgi(topics=[room_class])))
    ada = Socket(live.ws("/ws/topics/"), push_timeout=TIMEOUT)
    bob = Socket(live.ws("/ws/topics/"), push_timeout=TIMEOUT)
    await ada.connect()
    await bob.connect()
    try:
        with pytest.raises(JoinError, match="staff_only"):
            await ada.topic("room:staff").join()
        ada_room = ada.topic("room:lobby", {"nick": "ada"})
        assert await ada_room.join() == {"nick": "ada"}
        assert ada_room.recovered is True
        heard: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        bob_room = bob.topic("room:lobby", {"nick": "bob"})
        bob_room.on("message", heard.put_nowait)
        everyone = asyncio.Event()

        def check(_: object) -> None:
            if set(bob_room.presence) == {"ada", "bob"}:
                everyone.set()

        bob_room.on("*", check)
        await bob_room.join()
        assert await ada_room.push("message", {"body": " hi "}) == {}
        async with asyncio.timeout(TIMEOUT):
            assert await heard.get() == {"from": "ada", "body": "hi"}
        with pytest.raises(PushError, match="empty"):
            await ada_room.push("message", {"body": "  "})
        announce = block("def announce")["announce"]
        request = SimpleNamespace(POST={"body": "closing soon"})
        await sync_to_async(announce)(request)  # as a sync view runs
        async with asyncio.timeout(TIMEOUT):
            assert await heard.get() == {"from": "staff", "body": "closing soon"}
        if "presence" in layer.extensions:
            async with asyncio.timeout(TIMEOUT):
                await everyone.wait()
    finally:
        await ada.close()
        await bob.close()


async def test_topics_work_under_the_test_communicator(layer: InMemoryChannelLayer) -> None:
    room_class = block("class Room(Topic)")["Room"]
    app = anonymous(TopicsConsumer.as_asgi(topics=[room_class]))
    communicator = WebsocketCommunicator(app, "/ws/topics/", subprotocols=["channelworks.v1"])
    assert await communicator.connect() == (True, "channelworks.v1")
    await communicator.send_json_to(["1", "1", "room:x", "join", {"params": {"nick": "c"}}])
    join_ref, ref, topic, event, payload = await communicator.receive_json_from()
    assert (join_ref, ref, topic, event, payload["status"]) == ("1", "1", "room:x", "reply", "ok")
    response = payload["response"]
    assert (response["response"], response["recovered"], response["missed"]) == (
        {"nick": "c"},
        True,
        0,
    )
    assert response["position"][0] == 0
    await communicator.disconnect()
