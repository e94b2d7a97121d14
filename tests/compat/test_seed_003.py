"""Seed 003 (introduction) run through the ``channels`` names: consumers and both routers."""

from __future__ import annotations

from types import ModuleType

import pytest

from channelworks.testing import ApplicationCommunicator, WebsocketCommunicator


async def test_chat_consumer_with_name_command(seed003: ModuleType) -> None:
    # receive(self, *, text_data) is keyword-only: the runtime must pass text_data= by name.
    client = WebsocketCommunicator(seed003.ChatConsumer.as_asgi(), "/chat/")
    assert await client.connect() == (True, None)
    assert await client.receive_from() == "[Welcome Anonymous!]"
    await client.send_to(text_data="hello")
    assert await client.receive_from() == "Anonymous: hello"
    await client.send_to(text_data="/name Yuna")
    assert await client.receive_from() == "[set your username to Yuna]"
    await client.send_to(text_data="hi again")
    assert await client.receive_from() == "Yuna: hi again"
    await client.disconnect()


async def test_ping_consumer_speaks_raw_asgi(seed003: ModuleType) -> None:
    client = WebsocketCommunicator(seed003.PingConsumer.as_asgi(), "/ping/")
    assert await client.connect() == (True, None)
    await client.send_to(text_data="ping")
    assert await client.receive_from(timeout=3) == "pong"
    # Like Channels: a bare AsyncConsumer has no websocket.disconnect handler, so it fails
    # with a ValueError naming the type.
    with pytest.raises(ValueError, match=r"websocket\.disconnect"):
        await client.disconnect()


async def test_chatty_bot_answers_a_custom_protocol(seed003: ModuleType) -> None:
    scope = {"type": "telegram", "chat_id": 42, "username": "yuna"}
    bot = ApplicationCommunicator(seed003.application, scope)
    await bot.send_input({"type": "telegram.message", "text": "hi"})
    assert await bot.receive_output() == {"type": "telegram.message", "text": "You said: hi"}
    await bot.send_input({"type": "telegram.message", "text": "again"})
    assert (await bot.receive_output())["text"] == "You said: again"
    await bot.stop()


@pytest.mark.parametrize("path", ["/chat/admin/", "/chat/"])
async def test_websocket_branch_routes_by_url(seed003: ModuleType, path: str) -> None:
    client = WebsocketCommunicator(seed003.application, path)
    assert await client.connect() == (True, None)
    assert await client.receive_from() == "[Welcome Anonymous!]"
    await client.disconnect()


async def test_websocket_branch_refuses_an_unknown_url(seed003: ModuleType) -> None:
    client = WebsocketCommunicator(seed003.application, "/elsewhere/")
    accepted, _ = await client.connect()
    assert not accepted
    await client.wait()
