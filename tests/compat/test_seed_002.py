"""Seed 002 (channel layers) run through the ``channels`` names: groups and sends from outside."""

from __future__ import annotations

import asyncio
from types import ModuleType
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from channelworks.layers import BaseChannelLayer
from channelworks.testing import WebsocketCommunicator


def accepting(chat_consumer: Any) -> Any:
    """The notes' ``ChatConsumer`` plus the ``accept()`` its ``connect`` leaves out."""

    class AcceptingChatConsumer(chat_consumer):  # type: ignore[misc]
        def connect(self) -> None:
            super().connect()
            self.accept()
            self.send(text_data=self.channel_name)  # tells the test where to send

    return AcceptingChatConsumer


async def test_chat_consumer_as_written_joins_but_never_accepts(
    seed002: ModuleType, layer: BaseChannelLayer
) -> None:
    # As in Channels: a connect() that does not accept leaves the handshake pending.
    client = WebsocketCommunicator(seed002.ChatConsumer.as_asgi(), "/chat/")
    await client.send_input({"type": "websocket.connect"})
    assert await client.receive_nothing(0.2)
    await client.stop()


async def test_group_chat_message_reaches_every_member(
    seed002: ModuleType, layer: BaseChannelLayer
) -> None:
    app = accepting(seed002.ChatConsumer).as_asgi()
    alice, bob = WebsocketCommunicator(app, "/chat/"), WebsocketCommunicator(app, "/chat/")
    for client in (alice, bob):
        assert await client.connect() == (True, None)
        await client.receive_from()  # its channel name
    await alice.send_to(text_data="hello")
    assert await alice.receive_from() == "hello"
    assert await bob.receive_from() == "hello"
    await bob.disconnect()
    await alice.send_to(text_data="anyone?")
    assert await alice.receive_from() == "anyone?"
    await alice.disconnect()


async def test_send_hello_from_outside_reaches_one_consumer(
    seed002: ModuleType, layer: BaseChannelLayer
) -> None:
    app = accepting(seed002.ChatConsumer).as_asgi()
    target, other = WebsocketCommunicator(app, "/chat/"), WebsocketCommunicator(app, "/chat/")
    await target.connect()
    await other.connect()
    channel_name = await target.receive_from()
    await other.receive_from()
    await seed002.send_hello(channel_name)
    assert await target.receive_from() == "Hello there!"
    assert await other.receive_nothing()
    await target.disconnect()
    await other.disconnect()


async def test_announce_from_outside_reaches_every_group(
    seed002: ModuleType, layer: BaseChannelLayer
) -> None:
    first, second, outsider = [await layer.new_channel() for _ in range(3)]
    await layer.group_add("lobby", first)
    await layer.group_add("games", second)
    await seed002.announce(["lobby", "games"], "Server restarts at noon")
    expected = {"type": "chat.system_message", "text": "Server restarts at noon"}
    assert await layer.receive(first) == expected
    assert await layer.receive(second) == expected
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(layer.receive(outsider), 0.1)


async def test_send_from_sync_code_in_a_sync_to_async_thread(
    seed002: ModuleType, layer: BaseChannelLayer
) -> None:
    channel = await layer.new_channel()
    message = {"type": "chat.message", "text": "from a view"}
    await sync_to_async(seed002.send_from_sync_code)(channel, message)
    assert await layer.receive(channel) == message


async def test_send_from_sync_code_in_a_plain_thread_wakes_a_consumer(
    seed002: ModuleType, layer: BaseChannelLayer
) -> None:
    # A thread with no link to this loop: async_to_sync runs the send on a loop of its own.
    app = accepting(seed002.ChatConsumer).as_asgi()
    client = WebsocketCommunicator(app, "/chat/")
    await client.connect()
    channel_name = await client.receive_from()
    message = {"type": "chat.message", "text": "from a thread"}
    await asyncio.to_thread(seed002.send_from_sync_code, channel_name, message)
    assert await client.receive_from() == "from a thread"
    await client.disconnect()
