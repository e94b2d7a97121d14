"""The README's tutorial code runs as written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from django.urls import path

from channelworks.layers import InMemoryChannelLayer
from channelworks.routing import URLRouter
from channelworks.testing import WebsocketCommunicator

README = Path(__file__).parent.parent / "README.md"


def tutorial_block(marker: str) -> dict[str, Any]:
    """Execute the README's python block containing ``marker``; return its namespace."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    (code,) = [block for block in blocks if marker in block]
    namespace: dict[str, Any] = {}
    exec(compile(code, str(README), "exec"), namespace)
    return namespace


async def test_echo_consumer_and_its_test() -> None:
    echo = tutorial_block("class EchoConsumer")["EchoConsumer"]
    test_namespace = tutorial_block("async def test_echo")
    test_namespace["EchoConsumer"] = echo
    await test_namespace["test_echo"]()


async def test_chat_room_over_a_group(channel_layer: InMemoryChannelLayer) -> None:
    chat = tutorial_block("class ChatConsumer")["ChatConsumer"]
    app = URLRouter([path("ws/chat/<slug:room>/", chat.as_asgi())])
    alice = WebsocketCommunicator(app, "/ws/chat/lobby/")
    bob = WebsocketCommunicator(app, "/ws/chat/lobby/")
    elsewhere = WebsocketCommunicator(app, "/ws/chat/kitchen/")
    for communicator in (alice, bob, elsewhere):
        assert (await communicator.connect())[0]
    await alice.send_json_to({"text": "hello"})
    assert await alice.receive_json_from() == {"text": "hello"}
    assert await bob.receive_json_from() == {"text": "hello"}
    assert await elsewhere.receive_nothing()
    await channel_layer.group_send("chat.lobby", {"type": "chat.message", "text": "from a view"})
    assert await bob.receive_json_from() == {"text": "from a view"}
    for communicator in (alice, bob, elsewhere):
        await communicator.disconnect()
    assert channel_layer._groups == {}
