"""Channels' tutorial chat (parts 2 and 3), written as the tutorial writes it, run through compat.

The consumers below follow the tutorial's code: a sync ``WebsocketConsumer`` that joins the
room's group with ``async_to_sync(self.channel_layer.group_add)``, and its async rewrite; the
routing is the tutorial's ``re_path(r"ws/chat/(?P<room_name>\\w+)/$", ...)`` inside
``AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(...)))``. Two browsers in one
room see each other's messages; a browser in another room does not.
"""

from __future__ import annotations

import importlib
import json
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.test import override_settings
from django.urls import re_path

from channelworks.layers import BaseChannelLayer

ORIGIN = [(b"origin", b"http://testserver")]


def tutorial_consumers() -> tuple[Any, Any]:
    websocket = importlib.import_module("channels.generic.websocket")

    class ChatConsumer(websocket.WebsocketConsumer):  # type: ignore[misc,name-defined]
        def connect(self) -> None:
            self.room_name = self.scope["url_route"]["kwargs"]["room_name"]
            self.room_group_name = f"chat_{self.room_name}"
            async_to_sync(self.channel_layer.group_add)(self.room_group_name, self.channel_name)
            self.accept()

        def disconnect(self, close_code: int) -> None:
            async_to_sync(self.channel_layer.group_discard)(self.room_group_name, self.channel_name)

        def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
            message = json.loads(text_data or "{}")["message"]
            async_to_sync(self.channel_layer.group_send)(
                self.room_group_name, {"type": "chat.message", "message": message}
            )

        def chat_message(self, event: dict[str, Any]) -> None:
            self.send(text_data=json.dumps({"message": event["message"]}))

    class AsyncChatConsumer(websocket.AsyncWebsocketConsumer):  # type: ignore[misc,name-defined]
        async def connect(self) -> None:
            self.room_name = self.scope["url_route"]["kwargs"]["room_name"]
            self.room_group_name = f"chat_{self.room_name}"
            await self.channel_layer.group_add(self.room_group_name, self.channel_name)
            await self.accept()

        async def disconnect(self, close_code: int) -> None:
            await self.channel_layer.group_discard(self.room_group_name, self.channel_name)

        async def receive(
            self, text_data: str | None = None, bytes_data: bytes | None = None
        ) -> None:
            message = json.loads(text_data or "{}")["message"]
            await self.channel_layer.group_send(
                self.room_group_name, {"type": "chat.message", "message": message}
            )

        async def chat_message(self, event: dict[str, Any]) -> None:
            await self.send(text_data=json.dumps({"message": event["message"]}))

    return ChatConsumer, AsyncChatConsumer


def application(consumer: Any) -> Any:
    auth = importlib.import_module("channels.auth")
    routing = importlib.import_module("channels.routing")
    security = importlib.import_module("channels.security.websocket")
    websocket_urlpatterns = [re_path(r"ws/chat/(?P<room_name>\w+)/$", consumer.as_asgi())]
    return routing.ProtocolTypeRouter(
        {
            "websocket": security.AllowedHostsOriginValidator(
                auth.AuthMiddlewareStack(routing.URLRouter(websocket_urlpatterns))
            ),
        }
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("flavour", ["sync", "async"])
@override_settings(ALLOWED_HOSTS=["testserver"])
async def test_two_browsers_in_a_room_chat(layer: BaseChannelLayer, flavour: str) -> None:
    sync_consumer, async_consumer = tutorial_consumers()
    app = application(sync_consumer if flavour == "sync" else async_consumer)
    communicator = importlib.import_module("channels.testing").WebsocketCommunicator
    alice = communicator(app, "/ws/chat/lobby/", headers=ORIGIN)
    bob = communicator(app, "/ws/chat/lobby/", headers=ORIGIN)
    carol = communicator(app, "/ws/chat/kitchen/", headers=ORIGIN)
    for browser in (alice, bob, carol):
        assert (await browser.connect())[0]
    await alice.send_json_to({"message": "hello"})
    assert await alice.receive_json_from() == {"message": "hello"}
    assert await bob.receive_json_from() == {"message": "hello"}
    assert await carol.receive_nothing()
    for browser in (alice, bob, carol):
        await browser.disconnect()


@override_settings(ALLOWED_HOSTS=["testserver"])
async def test_a_foreign_origin_is_refused(layer: BaseChannelLayer) -> None:
    sync_consumer, _ = tutorial_consumers()
    communicator = importlib.import_module("channels.testing").WebsocketCommunicator
    stranger = communicator(
        application(sync_consumer), "/ws/chat/lobby/", headers=[(b"origin", b"http://evil.example")]
    )
    assert (await stranger.connect())[0] is False
