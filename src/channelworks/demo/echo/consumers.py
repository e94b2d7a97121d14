from __future__ import annotations

from channelworks.consumers import AsyncWebsocketConsumer


class EchoConsumer(AsyncWebsocketConsumer):
    """Sends every frame back, text as text and bytes as bytes. ``connect`` accepts everyone
    (the default); the origin check in ``asgi.py`` still applies."""

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send(text_data=text_data, bytes_data=bytes_data)
