"""Consumers the live server tests connect to with a real WebSocket client."""

from __future__ import annotations

from typing import Any

from channelworks.consumers import (
    AsyncJsonWebsocketConsumer,
    AsyncWebsocketConsumer,
    JsonWebsocketConsumer,
)
from channelworks.db import database_sync_to_async
from channelworks.types import Message
from tests.djangoapp.models import Note

#: the group every ``Note`` save is announced to (see ``tests.live.signals``)
NOTES_GROUP = "notes"


class Echo(AsyncWebsocketConsumer):
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send(text_data=text_data, bytes_data=bytes_data)


def note_texts() -> list[str]:
    return list(Note.objects.order_by("pk").values_list("text", flat=True))


class Notes(AsyncJsonWebsocketConsumer):
    """Joins ``notes`` (before the handshake completes) and forwards its messages.

    ``{"action": "list"}`` answers the notes in the database, read through
    ``database_sync_to_async``; ``{"action": "name"}`` answers the consumer's channel name.
    """

    groups = [NOTES_GROUP]

    async def receive_json(self, content: Any) -> None:
        if content == {"action": "list"}:
            await self.send_json({"notes": await database_sync_to_async(note_texts)()})
        elif content == {"action": "name"}:
            await self.send_json({"channel": self.channel_name})

    async def note_saved(self, event: Message) -> None:
        await self.send_json({"saved": event["text"]})


class SyncNotes(JsonWebsocketConsumer):
    """``{"action": "list"}`` answers the notes, read by the ORM in a sync handler."""

    def receive_json(self, content: Any) -> None:
        if content == {"action": "list"}:
            self.send_json({"notes": note_texts()})
