"""The notification socket that every page of a logged-in user opens.

It joins the user's own group (one socket per tab, all in it), says how many notifications
are unread, then forwards what ``channelworks.demo.social.notify`` sends to the group. The
page may send ``{"type": "mark_read", "ids": [...]}`` or ``{"type": "mark_all_read"}``.
"""

from __future__ import annotations

from typing import Any

from channelworks.consumers import AsyncJsonWebsocketConsumer
from channelworks.db import database_sync_to_async
from channelworks.demo import codes
from channelworks.demo.frames import error_frame
from channelworks.demo.social.notify import mark_read, unread_count, user_group


class NotificationConsumer(AsyncJsonWebsocketConsumer):
    listening = False

    async def connect(self) -> None:
        user = self.scope["user"]
        await self.accept()
        if not user.is_authenticated:
            await self.close(codes.LOGIN_REQUIRED, "log in to get notifications")
            return
        await self.join_groups([user_group(user.pk)])  # left again when the socket closes
        self.listening = True
        count = await database_sync_to_async(unread_count)(user.pk)
        await self.send_json({"type": "unread", "count": count})

    async def receive_json(self, content: Any) -> None:
        if not self.listening:  # frames that raced the close of a refused socket
            return
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "mark_all_read":
            await database_sync_to_async(mark_read)(self.scope["user"].pk)
        elif kind == "mark_read" and _ids(content.get("ids")) is not None:
            await database_sync_to_async(mark_read)(self.scope["user"].pk, _ids(content["ids"]))
        else:
            await self.send_json(
                error_frame("unknown", 'Send {"type": "mark_read", "ids": [...]} or mark_all_read.')
            )

    async def notification_created(self, event: dict[str, Any]) -> None:
        await self.send_json(
            {"type": "notification", "unread": event["unread"], **event["notification"]}
        )

    async def notification_unread(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "unread", "count": event["unread"]})


def _ids(value: object) -> list[int] | None:
    """``value`` if it is a short list of integers, else ``None``."""
    if not isinstance(value, list) or len(value) > 500:
        return None
    if not all(isinstance(item, int) and not isinstance(item, bool) for item in value):
        return None
    return value
