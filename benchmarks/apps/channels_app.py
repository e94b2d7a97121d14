"""Django Channels 4, the comparison: the same consumers as channelworks_app, line for line.

Channels needs Django settings before its consumers are imported. ``channels`` is imported
through ``importlib`` so that this module type-checks whether or not it is installed (it is
only in the ``bench`` dependency group).
"""

from __future__ import annotations

import importlib
from typing import Any

import django
from asgiref.sync import async_to_sync
from django.conf import settings
from django.urls import path

if not settings.configured:
    settings.configure(
        DEBUG=False,
        INSTALLED_APPS=[],
        DATABASES={},
        CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}},
    )
    django.setup()

_websocket: Any = importlib.import_module("channels.generic.websocket")
_routing: Any = importlib.import_module("channels.routing")

ROOM = "room"


class EchoConsumer(_websocket.AsyncWebsocketConsumer):  # type: ignore[misc]
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send(text_data=text_data, bytes_data=bytes_data)


class SyncEchoConsumer(_websocket.WebsocketConsumer):  # type: ignore[misc]
    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        self.send(text_data=text_data, bytes_data=bytes_data)


class RoomConsumer(_websocket.AsyncWebsocketConsumer):  # type: ignore[misc]
    groups = (ROOM,)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.channel_layer.group_send(ROOM, {"type": "chat.message", "text": text_data})

    async def chat_message(self, event: dict[str, Any]) -> None:
        await self.send(text_data=event["text"])


class SyncRoomConsumer(_websocket.WebsocketConsumer):  # type: ignore[misc]
    """The room as Channels' tutorial writes it: a sync consumer and ``async_to_sync``."""

    def connect(self) -> None:
        async_to_sync(self.channel_layer.group_add)(ROOM, self.channel_name)
        self.accept()

    def disconnect(self, code: int) -> None:
        async_to_sync(self.channel_layer.group_discard)(ROOM, self.channel_name)

    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        message = {"type": "chat.message", "text": text_data}
        async_to_sync(self.channel_layer.group_send)(ROOM, message)

    def chat_message(self, event: dict[str, Any]) -> None:
        self.send(text_data=event["text"])


application = _routing.ProtocolTypeRouter(
    {
        "websocket": _routing.URLRouter(
            [
                path("echo", EchoConsumer.as_asgi()),
                path("echo-sync", SyncEchoConsumer.as_asgi()),
                path("room", RoomConsumer.as_asgi()),
                path("room-sync", SyncRoomConsumer.as_asgi()),
            ]
        )
    }
)
