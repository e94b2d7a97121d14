"""The live blog socket: read-only, open to everyone, in the ``liveblog`` group.

Each event the signals send (with history: ``resume.py``) has a handler here that forwards
it to the page. The page reconnects with the position of the last event it got
(``?offset=&epoch=``): the events it missed are replayed from the group's log; a page
connecting for the first time, or one the log cannot continue (the in-memory layer restarted
with the server), gets every entry from the database instead (``{"type": "entries"}``), so
an edit made while it was away is never missed. Then ``{"type": "resumed", "source": "log" |
"database", "position": ...}``.
"""

from __future__ import annotations

from typing import Any

from channelworks.consumers import AsyncJsonWebsocketConsumer
from channelworks.consumers.resume import GroupResume
from channelworks.db import database_sync_to_async
from channelworks.demo.blog.models import Entry
from channelworks.demo.blog.signals import GROUP
from channelworks.demo.frames import error_frame
from channelworks.demo.resume import position_of
from channelworks.layers.history import POSITION_KEY


@database_sync_to_async
def all_entries() -> list[dict[str, Any]]:
    return [entry.as_event() for entry in Entry.objects.all()]


class LiveblogConsumer(GroupResume, AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        await self.accept()
        since = position_of(self.scope)
        resumed = await self.resume_group(GROUP, since=since)  # left when the socket closes
        position = resumed.as_dict()["position"]
        if since is not None and resumed.recovered:
            source = "log"
        else:
            source = "database"
            await self.send_json({"type": "entries", "entries": await all_entries()})
        await self.send_json({"type": "resumed", "source": source, "position": position})

    async def receive_json(self, content: Any) -> None:
        await self.send_json(error_frame("read_only", "The live blog socket only sends."))

    async def liveblog_entry_created(self, event: dict[str, Any]) -> None:
        await self.forward(event, {"type": "created", "entry": event["entry"]})

    async def liveblog_entry_updated(self, event: dict[str, Any]) -> None:
        await self.forward(event, {"type": "updated", "entry": event["entry"]})

    async def liveblog_entry_deleted(self, event: dict[str, Any]) -> None:
        await self.forward(event, {"type": "deleted", "id": event["id"]})

    async def forward(self, event: dict[str, Any], frame: dict[str, Any]) -> None:
        await self.send_json({**frame, "position": event.get(POSITION_KEY)})
