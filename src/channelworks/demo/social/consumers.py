"""The notification socket that every page of a logged-in user opens.

It joins the user's own group (one socket per tab, all in it), says how many notifications
are unread, then forwards what ``channelworks.demo.social.notify`` sends to the group. The
page may send ``{"type": "mark_read", "ids": [...]}`` or ``{"type": "mark_all_read"}``.

A page is made before its socket joins the group: what is pushed in between would be lost
(the avatar page would wait for its thumbnail forever). So the page opens the socket with
``?since=<id>``, the newest notification it was made knowing of (``middleware.py``), and the
socket first sends the unread ones after it. One committed while that happens is found in the
database *and* pushed to the group; the push is then dropped.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from channelworks.consumers import AsyncJsonWebsocketConsumer
from channelworks.db import database_sync_to_async
from channelworks.demo import codes
from channelworks.demo.frames import error_frame
from channelworks.demo.social.notify import catch_up, mark_read, user_group
from channelworks.types import Scope

#: the largest id a database integer holds
MAX_ID = 2**63 - 1


class NotificationConsumer(AsyncJsonWebsocketConsumer):
    listening = False
    #: the notifications sent while catching up, whose pushes are not to be sent again
    caught_up: frozenset[int] = frozenset()

    async def connect(self) -> None:
        user = self.scope["user"]
        if not user.is_authenticated:
            await self.accept()
            await self.close(codes.LOGIN_REQUIRED, "log in to get notifications")
            return
        # Join, then accept: once the page sees the socket open, no push can pass it by.
        await self.join_groups([user_group(user.pk)])  # left again when the socket closes
        await self.accept()
        self.listening = True
        count, missed = await database_sync_to_async(catch_up)(user.pk, _since(self.scope))
        await self.send_json({"type": "unread", "count": count})
        for notification in missed:
            await self.send_json({"type": "notification", "unread": count, **notification})
        self.caught_up = frozenset(notification["id"] for notification in missed)

    async def receive_json(self, content: Any) -> None:
        if not self.listening:  # frames that raced the close of a refused socket
            return
        kind = content.get("type") if isinstance(content, dict) else None
        ids = _ids(content.get("ids")) if kind == "mark_read" else None
        if kind == "mark_all_read" or ids is not None:
            await database_sync_to_async(mark_read)(self.scope["user"].pk, ids)
        else:
            await self.send_json(
                error_frame("unknown", 'Send {"type": "mark_read", "ids": [...]} or mark_all_read.')
            )

    async def notification_created(self, event: dict[str, Any]) -> None:
        if event["notification"]["id"] in self.caught_up:
            return
        await self.send_json(
            {"type": "notification", "unread": event["unread"], **event["notification"]}
        )

    async def notification_unread(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "unread", "count": event["unread"]})


def _since(scope: Scope) -> int | None:
    """The ``since`` of the socket's query string, if it is an id; else ``None``."""
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("since", [])
    if len(values) == 1 and values[0].isascii() and values[0].isdigit():
        since = int(values[0])
        return since if since <= MAX_ID else None
    return None


def _ids(value: object) -> list[int] | None:
    """``value`` if it is a short list of ids, else ``None``."""
    if not isinstance(value, list) or len(value) > 500:
        return None
    if not all(type(item) is int and 0 < item <= MAX_ID for item in value):
        return None  # type(...) is int: True is an int too
    return value
