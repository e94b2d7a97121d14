"""``online``: the topic every page of a logged-in user joins on the site's topics socket, so
the people list can show who is online (a user with several tabs is one key with one meta
per tab: online until the last one closes)."""

from __future__ import annotations

import time
from typing import Any

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
