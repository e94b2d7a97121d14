"""Consumers served by real servers in tests/server: small, each showing one behaviour."""

from __future__ import annotations

import time
from typing import Any

from channelworks.consumers import (
    AsyncHttpConsumer,
    AsyncJsonWebsocketConsumer,
    AsyncWebsocketConsumer,
    JsonWebsocketConsumer,
    WebsocketConsumer,
)
from channelworks.exceptions import DenyConnection
from channelworks.types import Message

# -- WebSocket ---------------------------------------------------------------------------------


class AsyncEcho(AsyncWebsocketConsumer):
    """Echoes text as text and bytes as bytes."""

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is not None:
            await self.send(text_data=text_data)
        else:
            await self.send(bytes_data=bytes_data)


class SyncEcho(WebsocketConsumer):
    """Echoes like ``AsyncEcho``; ``"slow"`` announces itself, blocks 1 s, then answers."""

    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data == "slow":
            self.send(text_data="slow started")
            time.sleep(1)
            self.send(text_data="slow done")
        elif text_data is not None:
            self.send(text_data=text_data)
        else:
            self.send(bytes_data=bytes_data)


class AsyncJsonEcho(AsyncJsonWebsocketConsumer):
    async def receive_json(self, content: Any) -> None:
        await self.send_json({"echo": content})


class SyncJsonEcho(JsonWebsocketConsumer):
    def receive_json(self, content: Any) -> None:
        self.send_json({"echo": content})


class Chat(AsyncWebsocketConsumer):
    """A room: every frame is broadcast to the ``room`` group.

    On connect it tells the client its channel name (``channel:<name>``); on disconnect it
    broadcasts ``left:<name>``, after the runtime has already taken it out of the group.
    """

    groups = ["room"]

    async def connect(self) -> None:
        await self.accept()
        await self.send(text_data=f"channel:{self.channel_name}")

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        assert self.channel_layer is not None
        await self.channel_layer.group_send("room", {"type": "chat.message", "text": text_data})

    async def chat_message(self, event: Message) -> None:
        await self.send(text_data=event["text"])

    async def disconnect(self, code: int) -> None:
        assert self.channel_layer is not None
        await self.channel_layer.group_send(
            "room", {"type": "chat.message", "text": f"left:{self.channel_name}"}
        )


class AsyncCloser(AsyncWebsocketConsumer):
    """``"close"`` closes with 4001; ``"boom"`` raises; anything else is echoed."""

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data == "close":
            await self.close(code=4001)
        elif text_data == "boom":
            raise RuntimeError("boom")
        else:
            await self.send(text_data=text_data)


class SyncCloser(WebsocketConsumer):
    """Same as ``AsyncCloser`` with sync hooks."""

    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data == "close":
            self.close(code=4001)
        elif text_data == "boom":
            raise RuntimeError("boom")
        else:
            self.send(text_data=text_data)


class AsyncDeny(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        raise DenyConnection


class SyncDeny(WebsocketConsumer):
    def connect(self) -> None:
        raise DenyConnection


class AsyncCloseBeforeAccept(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await self.close()


class SyncCloseBeforeAccept(WebsocketConsumer):
    def connect(self) -> None:
        self.close()


class Subprotocol(AsyncWebsocketConsumer):
    """Accepts ``chat.v2`` when offered; reports the offered list as its first frame."""

    async def connect(self) -> None:
        offered = list(self.scope.get("subprotocols", []))
        await self.accept(subprotocol="chat.v2" if "chat.v2" in offered else None)
        await self.send(text_data=",".join(offered))


# -- HTTP --------------------------------------------------------------------------------------


class Hello(AsyncHttpConsumer):
    """A plain response naming the method, path and request body."""

    async def handle(self, body: bytes) -> None:
        text = f"{self.scope['method']} {self.scope['path']} {body.decode()}"
        await self.send_response(
            200, text.encode(), headers=[("Content-Type", "text/plain"), ("X-Test", "hello")]
        )


SSE_HEADERS = [(b"Content-Type", b"text/event-stream"), (b"Cache-Control", b"no-cache")]


class SseBurst(AsyncHttpConsumer):
    """An event stream sent whole from ``handle``: three parts, then an empty final part."""

    async def handle(self, body: bytes) -> None:
        await self.send_headers(headers=SSE_HEADERS)
        for n in range(3):
            await self.send_body(f"data: {n}\n\n".encode(), more_body=True)
        await self.send_body(b"")


class SseFeed(AsyncHttpConsumer):
    """An event stream fed by the channel layer.

    Joins the ``feed`` group, then sends ``data: ready``; each ``feed.event`` message becomes
    one event, and the one with ``last`` set ends the response.
    """

    async def handle(self, body: bytes) -> None:
        await self.join_groups(["feed"])
        await self.send_headers(headers=SSE_HEADERS)
        await self.send_body(b"data: ready\n\n", more_body=True)

    async def feed_event(self, event: Message) -> None:
        last = bool(event.get("last"))
        await self.send_body(f"data: {event['data']}\n\n".encode(), more_body=not last)


class Broken(AsyncHttpConsumer):
    async def handle(self, body: bytes) -> None:
        raise RuntimeError("broken handler")


class LongPoll(AsyncHttpConsumer):
    """Starts the response, announces its channel on ``longpoll.waiting``; a ``poll.result``
    message completes it.

    Its ``disconnect`` reports on ``longpoll.gone``, however the exchange ended.
    """

    async def handle(self, body: bytes) -> None:
        assert self.channel_layer is not None
        assert self.channel_name is not None
        await self.send_headers(headers=[("Content-Type", "text/plain")])
        await self.channel_layer.send(
            "longpoll.waiting", {"type": "waiting", "channel": self.channel_name}
        )

    async def poll_result(self, event: Message) -> None:
        await self.send_body(event["text"].encode())

    async def disconnect(self) -> None:
        assert self.channel_layer is not None
        await self.channel_layer.send(
            "longpoll.gone", {"type": "gone", "channel": self.channel_name}
        )
