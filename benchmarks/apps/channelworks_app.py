"""channelworks, written the way a project would: consumers, a URL router, an in-memory layer.

No Django settings: the core reads its layers from ``channel_layers.configure``.
"""

from __future__ import annotations

from typing import Any

from django.urls import path

from channelworks.consumers import AsyncWebsocketConsumer, WebsocketConsumer
from channelworks.layers import channel_layers
from channelworks.routing import ProtocolTypeRouter, URLRouter

channel_layers.configure({"default": {"BACKEND": "channelworks.layers.InMemoryChannelLayer"}})

ROOM = "room"


class EchoConsumer(AsyncWebsocketConsumer):
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send(text_data=text_data, bytes_data=bytes_data)


class SyncEchoConsumer(WebsocketConsumer):
    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        self.send(text_data=text_data, bytes_data=bytes_data)


class RoomConsumer(AsyncWebsocketConsumer):
    groups = (ROOM,)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        assert self.channel_layer is not None
        await self.channel_layer.group_send(ROOM, {"type": "chat.message", "text": text_data})

    async def chat_message(self, event: dict[str, Any]) -> None:
        await self.send(text_data=event["text"])


application = ProtocolTypeRouter(
    {
        "websocket": URLRouter(
            [
                path("echo", EchoConsumer.as_asgi()),
                path("echo-sync", SyncEchoConsumer.as_asgi()),
                path("room", RoomConsumer.as_asgi()),
            ]
        )
    }
)
