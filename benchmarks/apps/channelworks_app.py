"""channelworks, written the way a project would: consumers, a URL router, an in-memory layer.

No Django settings: the core reads its layers from ``channel_layers.configure``.

Every consumer keeps the default per-connection limits (docs/limits.md) except the inbound
rates, which a benchmark client exceeds by design: they are raised out of reach, so every
check still runs on every frame and nobody is limited. ``/echo-off`` is the echo with no
limit at all (the limits' cost is ``/echo`` against it); ``/echo-limited`` has the default
limits (policy "close") and ``/echo-dropping`` the default limits with policy "drop" (the
flood figure). ``/echo-unobserved`` is ``/echo`` kept out of the operators' view
(``observed=False``: no per-frame counters; figure 11).
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from django.urls import path

from channelworks.consumers import AsyncWebsocketConsumer, WebsocketConsumer
from channelworks.layers import channel_layers
from channelworks.limits import Limits
from channelworks.routing import ProtocolTypeRouter, URLRouter

channel_layers.configure({"default": {"BACKEND": "channelworks.layers.InMemoryChannelLayer"}})

ROOM = "room"

#: the default limits with the inbound rates out of any benchmark client's reach
UNREACHED_RATES: dict[str, Any] = {
    "messages_per_second": 1e12,
    "message_burst": 10**12,
    "bytes_per_second": 1e15,
    "bytes_burst": 10**15,
}


class EchoConsumer(AsyncWebsocketConsumer):
    limits = UNREACHED_RATES

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send(text_data=text_data, bytes_data=bytes_data)


class SyncEchoConsumer(WebsocketConsumer):
    limits = UNREACHED_RATES

    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        self.send(text_data=text_data, bytes_data=bytes_data)


class RoomConsumer(AsyncWebsocketConsumer):
    groups = (ROOM,)
    limits = UNREACHED_RATES

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        assert self.channel_layer is not None
        await self.channel_layer.group_send(ROOM, {"type": "chat.message", "text": text_data})

    async def chat_message(self, event: dict[str, Any]) -> None:
        await self.send(text_data=event["text"])


class SyncRoomConsumer(WebsocketConsumer):
    """The room as Channels' tutorial writes it: a sync consumer and ``async_to_sync``."""

    limits = UNREACHED_RATES

    def connect(self) -> None:
        assert self.channel_layer is not None
        assert self.channel_name is not None
        async_to_sync(self.channel_layer.group_add)(ROOM, self.channel_name)
        self.accept()

    def disconnect(self, code: int) -> None:
        assert self.channel_layer is not None
        assert self.channel_name is not None
        async_to_sync(self.channel_layer.group_discard)(ROOM, self.channel_name)

    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        assert self.channel_layer is not None
        message = {"type": "chat.message", "text": text_data}
        async_to_sync(self.channel_layer.group_send)(ROOM, message)

    def chat_message(self, event: dict[str, Any]) -> None:
        self.send(text_data=event["text"])


application = ProtocolTypeRouter(
    {
        "websocket": URLRouter(
            [
                path("echo", EchoConsumer.as_asgi()),
                path("echo-off", EchoConsumer.as_asgi(limits=Limits.off())),
                path("echo-unobserved", EchoConsumer.as_asgi(observed=False)),
                path("echo-limited", EchoConsumer.as_asgi(limits=None)),
                path("echo-dropping", EchoConsumer.as_asgi(limits={"policy": "drop"})),
                path("echo-sync", SyncEchoConsumer.as_asgi()),
                path("room", RoomConsumer.as_asgi()),
                path("room-sync", SyncRoomConsumer.as_asgi()),
            ]
        )
    }
)
