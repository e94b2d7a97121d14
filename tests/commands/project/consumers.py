"""The project's consumers: a WebSocket echo and a worker for ``thumbnail-generate``."""

from __future__ import annotations

from channelworks.consumers import AsyncConsumer, AsyncWebsocketConsumer
from channelworks.types import Message

#: names the worker consumer handled, in order (read by in-process tests)
generated: list[str] = []


class Echo(AsyncWebsocketConsumer):
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send(text_data=text_data, bytes_data=bytes_data)


class Thumbnails(AsyncConsumer):
    """Handles ``thumbnail.generate`` messages sent to the ``thumbnail-generate`` channel."""

    async def thumbnail_generate(self, message: Message) -> None:
        generated.append(message["name"])
