"""The social pages' topics on the site's topics socket.

``online``: the topic every page of a logged-in user joins on the site's topics socket, so
the people list can show who is online (a user with several tabs is one key with one meta
per tab: online until the last one closes)."""

from __future__ import annotations

import time
from typing import Any

from channelworks.db import database_sync_to_async
from channelworks.demo.social.models import Post
from channelworks.topics import JoinRefused, Topic


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
    return pk.isascii() and pk.isdigit() and Post.objects.filter(pk=int(pk)).exists()


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
