"""Topic classes the integration tests serve."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from channelworks.topics import JoinRefused, Reply, Topic, broadcast


class Room(Topic):
    pattern = "room:{slug}"
    history = {"size": 50, "ttl": 60}
    presence = True

    async def join(self, params: dict[str, Any]) -> dict[str, Any] | None:
        if self.params["slug"] == "vip" and params.get("password") != "sesame":
            raise JoinRefused("wrong_password")
        nick = params.get("nick")
        if nick:
            await self.track(str(nick), {"nick": nick})
        return {"slug": self.params["slug"]}

    async def handle_in(self, event: str, payload: dict[str, Any]) -> dict[str, Any] | Reply | None:
        if event == "say":
            await self.broadcast("said", {"body": payload.get("body")})
            return {"ok": True}
        if event == "echo":
            return Reply.ok(payload)
        if event == "fail":
            return Reply.error({"reason": "asked to fail"})
        if event == "silence":
            return None
        if event == "crash":
            raise RuntimeError("boom")
        if event == "kick_me":
            await self.close("kicked")
            return None
        if event == "whisper":
            await self.push("whispered", {"body": payload.get("body")})
            return {}
        if event == "slow":
            await asyncio.sleep(float(payload.get("seconds", 0)))
            return {}
        return await super().handle_in(event, payload)


class Plain(Topic):
    """No history, no presence; a sync join hook."""

    pattern = "plain:{name}"

    def join(self, params: dict[str, Any]) -> dict[str, Any] | None:  # type: ignore[override]
        if params.get("refuse"):
            return False  # type: ignore[return-value]
        return None

    def handle_in(self, event: str, payload: dict[str, Any]) -> Reply:  # type: ignore[override]
        if event == "where":  # runs in a worker thread, as a sync hook may block
            return Reply.ok({"thread": threading.current_thread().name})
        if event == "announce":  # the sync broadcast, from the hook's worker thread
            broadcast(self.name, "announced", payload)
            return Reply.ok()
        return Reply.error({"reason": "unhandled_event"})
