"""The room pages' topic on the site's topics socket (``/ws/topics/``): who is here and who is
typing. The messages themselves go through ``consumers.ChatConsumer``. (``chat:``, not
``room:``: topic classes are found by pattern in the whole process, and the topics tutorial
and tests use ``room:{slug}`` for rooms of their own.)

``chat:<slug>``: a logged-in user who may see the room joins it and is tracked in its presence
under their user name, once per tab (``Channelworks.Presence`` in the page lists each user
once, with their tabs as metas). A push ``typing`` is broadcast to the room as
``{"user": name}`` (no history: it is stale in seconds); the pages show "bob is typing…"
for a few seconds.

``activity:<slug>``: the same users may join it to hear ``message`` (``{"id", "author"}``)
for each new message of the room (``consumers.ChatConsumer`` broadcasts it), and push
``unread`` for the count to start from: the room lists count what is unread in the rooms one
is not looking at.
"""

from __future__ import annotations

import time
from typing import Any

from channelworks.db import database_sync_to_async
from channelworks.demo.chat.models import Room, RoomRead, avatar_url
from channelworks.topics import JoinRefused, Reply, Topic


@database_sync_to_async
def may_see(user: Any, slug: str) -> tuple[bool, str]:
    """Whether ``user`` may see the room ``slug``, and their avatar's URL."""
    visible = Room.objects.visible_to(user).filter(slug=slug).exists()
    return visible, avatar_url(user) if visible else ""


async def require_visible(topic: Topic) -> str:
    """Refuse the join unless the user may see the topic's room; their avatar's URL."""
    user = topic.user
    if user is None or not user.is_authenticated:
        raise JoinRefused("login_required")
    visible, avatar = await may_see(user, topic.params["slug"])
    if not visible:
        raise JoinRefused("not_found")  # a private room is "missing" to non-members
    return avatar


class RoomTopic(Topic):
    pattern = "chat:{slug}"
    presence = True

    async def join(self, params: dict[str, Any]) -> dict[str, Any] | None:
        avatar = await require_visible(self)
        self.username: str = self.user.get_username()
        await self.track(self.username, {"avatar": avatar, "online_at": time.time()})
        return {"user": self.username}

    async def handle_in(self, event: str, payload: dict[str, Any]) -> dict[str, Any] | Reply | None:
        if event == "typing":
            await self.broadcast("typing", {"user": self.username})
            return {}
        return await super().handle_in(event, payload)


class ActivityTopic(Topic):
    pattern = "activity:{slug}"

    async def join(self, params: dict[str, Any]) -> dict[str, Any] | None:
        await require_visible(self)
        return {}

    async def handle_in(self, event: str, payload: dict[str, Any]) -> dict[str, Any] | Reply | None:
        # The count a page starts from, asked once joined: the socket is in the topic's group
        # by then, so a message is in this count or arrives after it (with a larger id than
        # "newest"), or both (the page then ignores it) — never neither.
        if event == "unread":
            return await unread_in(self.user, self.params["slug"])
        return await super().handle_in(event, payload)


@database_sync_to_async
def unread_in(user: Any, slug: str) -> dict[str, int]:
    """``{"unread": n, "newest": id}``: what ``user`` has not read in the room ``slug``."""
    room = Room.objects.get(slug=slug)
    read = RoomRead.objects.filter(user=user, room=room).values_list("last_read", flat=True)
    newer = room.messages.filter(pk__gt=read.first() or 0).exclude(author=user)
    newest = room.messages.order_by("-id").values_list("id", flat=True).first() or 0
    return {"unread": newer.count(), "newest": newest}


def activity_topic(slug: str) -> str:
    return f"activity:{slug}"
