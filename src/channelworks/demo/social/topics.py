"""The social pages' topics on the site's topics socket.

``online``: the topic every page of a logged-in user joins on the site's topics socket, so
the people list can show who is online (a user with several tabs is one key with one meta
per tab: online until the last one closes).

``notifications:<user id>``: every page of a logged-in user joins their own (no one else may),
for the unread badge and the toasts (``NotificationsTopic``).

``post:<id>``: an open post page (``PostTopic``)."""

from __future__ import annotations

import time
from typing import Any, TypeGuard

from channelworks.db import database_sync_to_async
from channelworks.demo.social.models import Post
from channelworks.demo.social.notify import catch_up, mark_read
from channelworks.topics import JoinRefused, Reply, Topic

#: the largest id a database integer holds
MAX_ID = 2**63 - 1


class OnlineTopic(Topic):
    pattern = "online"
    presence = True

    async def join(self, params: dict[str, Any]) -> dict[str, Any] | None:
        user = self.user
        if user is None or not user.is_authenticated:
            raise JoinRefused("login_required")
        await self.track(user.get_username(), {"online_at": time.time()})
        return {}


@database_sync_to_async
def post_exists(pk: str) -> bool:
    """Whether ``pk`` is a post's id as the pages spell it (``"01"`` would be a topic of its
    own, which no broadcast reaches)."""
    canonical = pk.isascii() and pk.isdigit() and str(int(pk)) == pk and int(pk) <= MAX_ID
    return canonical and Post.objects.filter(pk=int(pk)).exists()


def post_topic(pk: int) -> str:
    return f"post:{pk}"


class PostTopic(Topic):
    """``post:<id>``: an open post page hears of its new comments (``comment``, the comment)
    and of its like count (``likes``, ``{"count": n}``), broadcast by ``views.py`` once the
    change commits. Kept in a short history: a page that reconnects gets what it missed."""

    pattern = "post:{pk}"
    history = {"size": 100, "ttl": 3600}  # noqa: RUF012  (Topic declares it a ClassVar)

    async def join(self, params: dict[str, Any]) -> dict[str, Any] | None:
        user = self.user
        if user is None or not user.is_authenticated:
            raise JoinRefused("login_required")
        if not await post_exists(self.params["pk"]):
            raise JoinRefused("not_found")
        return {}


class NotificationsTopic(Topic):
    """``notifications:<user id>``: ``notify.py`` broadcasts ``notification`` (the
    notification, with the user's ``unread`` count) and ``unread`` (``{"count": n}``) to it.

    A page is made before its socket joins: what is broadcast in between would be lost (the
    avatar page would wait for its thumbnail forever). So once joined (in the topic's group:
    nothing broadcast from then on passes it by) the page pushes ``catch_up`` with ``since``,
    the newest notification it was made knowing of (``middleware.py``), and gets ``{"unread":
    n, "missed": [...]}``, the ones after it, oldest first, each with ``read`` (one read on
    another page meanwhile is no toast, but its conversation page shows the message); again
    after each rejoin, with the newest it got. One committed meanwhile can come both ways:
    the page skips an id it has shown. The page pushes ``mark_read`` (``{"ids": [...]}``, up
    to 500) and ``mark_all_read`` too; anything else gets an error reply (``unknown``)."""

    pattern = "notifications:{user_id}"

    async def join(self, params: dict[str, Any]) -> dict[str, Any] | None:
        user = self.user
        if user is None or not user.is_authenticated:
            raise JoinRefused("login_required")
        if self.params["user_id"] != str(user.pk):
            raise JoinRefused("forbidden")
        return {}

    async def handle_in(self, event: str, payload: dict[str, Any]) -> dict[str, Any] | Reply | None:
        user_id = self.user.pk
        if event == "catch_up":
            since = payload.get("since")
            if not _is_id(since, zero=True):
                return Reply.error({"reason": "invalid", "message": "since: a notification id"})
            count, missed = await database_sync_to_async(catch_up)(user_id, since)
            return {"unread": count, "missed": missed}
        ids = _ids(payload.get("ids")) if event == "mark_read" else None
        if event == "mark_all_read" or ids is not None:
            await database_sync_to_async(mark_read)(user_id, ids)
            return {}
        message = 'Push "mark_read" with {"ids": [...]}, "mark_all_read" or "catch_up".'
        return Reply.error({"reason": "unknown", "message": message})


def _is_id(value: object, *, zero: bool = False) -> TypeGuard[int]:
    """Whether ``value`` is an id that fits the database (``zero``: or 0, "none yet")."""
    return type(value) is int and (0 if zero else 1) <= value <= MAX_ID  # True is an int too


def _ids(value: object) -> list[int] | None:
    """``value`` if it is a short list of ids, else ``None``."""
    if not isinstance(value, list) or len(value) > 500:
        return None
    if not all(_is_id(item) for item in value):
        return None
    return value
