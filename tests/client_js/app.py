"""The topics endpoint the JS client's browser tests run against, in a uvicorn process.

``/`` is an empty page that loads the shipped client (``/static/channelworks/client.js``, the
file Django serves as ``{% static "channelworks/client.js" %}``); ``/ws/topics/`` is a
``TopicsConsumer`` with the topics below, on the Redis layer under the prefix of
``CW_JS_PREFIX``, so a room's history outlives a restart of the server.

``python -m tests.client_js.app TOPIC EVENT JSON`` broadcasts from another process (while
the server is down, to leave messages for a resume).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from channelworks.layers.registry import channel_layers
from channelworks.topics import JoinRefused, Reply, Topic, TopicsConsumer, broadcast
from channelworks.types import Receive, Scope, Send

STATIC = Path(__file__).resolve().parents[2] / "src" / "channelworks" / "static"
PAGE = b"""<!doctype html><html><head><meta charset="utf-8"><title>client</title>
<script src="/static/channelworks/client.js"></script></head><body>client</body></html>"""

channel_layers.configure(
    {
        "default": {
            "BACKEND": "channelworks.layers.redis.RedisChannelLayer",
            "CONFIG": {
                "hosts": [os.environ.get("CHANNELWORKS_REDIS_URL", "redis://127.0.0.1:6379/0")],
                "prefix": os.environ.get("CW_JS_PREFIX", "cwjs"),
            },
        }
    }
)


class Room(Topic):
    """Keeps history (resume) and presence (by the ``nick`` join param)."""

    pattern = "room:{slug}"
    history = {"size": 100, "ttl": 600}
    presence = True

    async def join(self, params: dict[str, Any]) -> dict[str, Any]:
        await self.track(str(params.get("nick", "anonymous")), {"color": params.get("color")})
        return {"room": self.params["slug"]}

    async def handle_in(self, event: str, payload: dict[str, Any]) -> dict[str, Any] | Reply | None:
        if event == "echo":
            return {"echo": payload}
        if event == "shout":
            await self.broadcast("said", payload)
            return {}
        if event == "fail":
            return Reply.error({"reason": "not today"})
        return None  # "silent" and anything else: no reply


class Vip(Topic):
    pattern = "vip:{slug}"

    async def join(self, params: dict[str, Any]) -> None:
        raise JoinRefused("members_only")


topics = TopicsConsumer.as_asgi(topics=[Room, Vip])
#: refuses every socket (no auth middleware here: all are anonymous) with 4403
private = TopicsConsumer.as_asgi(topics=[Room], login_required=True)


async def application(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "websocket":
        endpoint = {"/ws/topics/": topics, "/ws/private/": private}.get(scope["path"])
        if endpoint is not None:
            await endpoint(scope, receive, send)
        return
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/":
        body, kind, status = PAGE, b"text/html; charset=utf-8", 200
    elif path == "/static/channelworks/client.js":
        body, kind, status = (
            (STATIC / "channelworks" / "client.js").read_bytes(),
            b"text/javascript",
            200,
        )
    else:
        body, kind, status = b"not found", b"text/plain", 404
    headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


if __name__ == "__main__":
    topic, event, payload = sys.argv[1:4]
    position = broadcast(topic, event, json.loads(payload))
    print(position)
