"""Handler lookup under every attribute name a layer message could aim at.

The pattern at risk: a consumer that forwards client JSON to ``group_send`` lets any client
choose the ``type`` every member of the room dispatches. Only the consumer's own handlers
may run; any other name is logged and dropped, and the connection lives on.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from hypothesis import given

from channelworks.consumers import (
    AsyncConsumer,
    AsyncHttpConsumer,
    AsyncJsonWebsocketConsumer,
    AsyncWebsocketConsumer,
    JsonWebsocketConsumer,
    SyncConsumer,
    WebsocketConsumer,
)
from channelworks.consumers.handlers import resolve
from channelworks.exceptions import InvalidMessage, UnhandledMessageType
from channelworks.layers import InMemoryChannelLayer, channel_layers
from channelworks.testing import WebsocketCommunicator
from channelworks.types import Message
from tests.fuzz.strategies import attribute_names, fuzz_settings, message_types_for

ROOM = "room"


class AsyncRoom(AsyncJsonWebsocketConsumer):
    """Forwards whatever the client sends to the room, as the pattern at risk does."""

    groups = [ROOM]

    async def receive_json(self, content: Any) -> None:
        await self.channel_layer.group_send(ROOM, content)  # type: ignore[union-attr]

    async def chat_message(self, event: Message) -> None:
        await self.send_json({"echo": event["text"]})


class SyncRoom(JsonWebsocketConsumer):
    groups = [ROOM]

    def chat_message(self, event: Message) -> None:
        self.send_json({"echo": event["text"]})


class Abstract(abc.ABC):  # noqa: B024 - its metaclass (ABCMeta.register...) is the point
    pass


class MetaRoom(AsyncWebsocketConsumer, Abstract):
    groups = [ROOM]

    async def chat_message(self, event: Message) -> None:
        await self.send(text_data=event["text"])


ROOMS: list[type[Any]] = [AsyncRoom, SyncRoom, MetaRoom]
FRAMEWORK = [
    AsyncConsumer,
    SyncConsumer,
    AsyncWebsocketConsumer,
    WebsocketConsumer,
    AsyncJsonWebsocketConsumer,
    JsonWebsocketConsumer,
    AsyncHttpConsumer,
]
NAMES = attribute_names(*ROOMS, *FRAMEWORK)
HANDLERS = {"chat_message"}
#: handlers of server events: ``resolve`` finds them; the layer reader refuses them first
PROTOCOL_HANDLERS = {
    "websocket_connect",
    "websocket_receive",
    "websocket_disconnect",
    "http_request",
    "http_disconnect",
}
#: the framework's layer-message handlers, each harmless here: a session end closes only a
#: socket whose own session group it names (channelworks.session_sockets), an operator's close
#: only the socket whose own channel it names (channelworks.ops.control), and a presence diff
#: is forwarded only by a consumer that declares ``presence`` (these rooms do not)
FRAMEWORK_HANDLERS = {"channelworks_session_ended", "channelworks_admin_close", "presence_diff"}


@asynccontextmanager
async def room(consumer: type[Any], members: int = 2) -> AsyncIterator[list[WebsocketCommunicator]]:
    """``members`` connected sockets of ``consumer`` in ROOM, on a fresh in-memory layer."""
    layer = InMemoryChannelLayer()
    channel_layers.set("default", layer)
    sockets = [WebsocketCommunicator(consumer.as_asgi(), "/") for _ in range(members)]
    try:
        for socket in sockets:
            assert (await socket.connect())[0]
        yield sockets
    finally:
        for socket in sockets:
            await socket.disconnect()
        channel_layers.backends.pop("default", None)


async def expect_only_the_echo(sockets: list[WebsocketCommunicator], text: str) -> None:
    """Every socket is open and its next frame is the echo of ``text``.

    Messages reach a consumer in order, so whatever an earlier message made it send (a close,
    a frame) would come before this echo.
    """
    for socket in sockets:
        frame = await socket.receive_output()
        assert frame["type"] == "websocket.send", frame
        assert text in (frame.get("text") or ""), frame


async def send_to_room(message_type: str, sockets: list[WebsocketCommunicator]) -> None:
    """The bad type, then a good one: the good one must be the only thing anyone sees."""
    layer = channel_layers.backends["default"]
    try:
        await layer.group_send(ROOM, {"type": message_type, "text": "injected"})
    except InvalidMessage:
        assert message_type.startswith("_"), message_type  # refused at the sender: fine
    await layer.group_send(ROOM, {"type": "chat.message", "text": "after"})
    await expect_only_the_echo(sockets, "after")


@pytest.mark.parametrize("consumer", ROOMS)
async def test_no_attribute_name_is_a_handler_unless_defined_as_one(
    consumer: type[Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Every attribute name of the class, its metaclass, object and the framework classes,
    sent to a room as a layer message, is dropped with a log and closes nobody."""
    with caplog.at_level(logging.ERROR, logger="channelworks.consumers"):
        async with room(consumer) as sockets:
            for name in NAMES:
                if name not in HANDLERS:
                    await send_to_room(name, sockets)
            for socket in sockets:
                assert await socket.receive_nothing()
    for record in caplog.records:
        assert record.getMessage().startswith("Dropped a channel layer message"), record


@pytest.mark.parametrize("consumer", ROOMS)
@fuzz_settings(max_examples=150)
@given(message_type=message_types_for(NAMES))
async def test_a_type_aimed_at_any_attribute_reaches_only_handlers(
    consumer: type[Any], message_type: str
) -> None:
    """A layer message whose type names any attribute (underscores written as dots or not)
    reaches a handler only if the class defines one by that name, and closes nobody."""
    name = message_type.replace(".", "_")
    if name in HANDLERS:
        return
    if name not in PROTOCOL_HANDLERS | FRAMEWORK_HANDLERS:
        for sync_allowed in (False, True):
            with pytest.raises(UnhandledMessageType):
                resolve(consumer, message_type, sync_allowed)
    async with room(consumer) as sockets:
        await send_to_room(message_type, sockets)


async def test_a_client_forwarding_json_cannot_close_the_room() -> None:
    """The reported case: one client sends {"type": "mro"} through a forwarding consumer;
    every member (the sender too) stays connected and gets the next message."""
    async with room(AsyncRoom, members=3) as sockets:
        await sockets[0].send_json_to({"type": "mro", "text": "x"})
        await sockets[1].send_json_to({"type": "chat.message", "text": "still here"})
        await expect_only_the_echo(sockets, "still here")
