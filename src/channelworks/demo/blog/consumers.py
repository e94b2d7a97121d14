"""The live blog socket: read-only, open to everyone, in the ``liveblog`` group.

``groups`` makes the consumer join the group on connect and leave it on disconnect; each
event the signals send has a handler here that forwards it to the page.
"""

from __future__ import annotations

from typing import Any

from channelworks.consumers import AsyncJsonWebsocketConsumer
from channelworks.demo.blog.signals import GROUP
from channelworks.demo.frames import error_frame


class LiveblogConsumer(AsyncJsonWebsocketConsumer):
    groups = [GROUP]  # noqa: RUF012  (Channels' spelling; the base class declares a ClassVar)

    async def receive_json(self, content: Any) -> None:
        await self.send_json(error_frame("read_only", "The live blog socket only sends."))

    async def liveblog_entry_created(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "created", "entry": event["entry"]})

    async def liveblog_entry_updated(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "updated", "entry": event["entry"]})

    async def liveblog_entry_deleted(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "deleted", "id": event["id"]})
