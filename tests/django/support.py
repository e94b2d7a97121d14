"""Helpers shared by the Django integration tests."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from channelworks.consumers import AsyncHttpConsumer, AsyncWebsocketConsumer, WebsocketConsumer
from channelworks.testing import WebsocketCommunicator
from channelworks.types import Receive, Scope, Send

# -- sessions ----------------------------------------------------------------------------------


def session_cookie(key: str | bytes) -> tuple[bytes, bytes]:
    raw = key if isinstance(key, bytes) else key.encode("latin-1")
    return b"cookie", settings.SESSION_COOKIE_NAME.encode() + b"=" + raw


class ScopeRecorder:
    """An ASGI app that keeps the scopes it gets; accepts sockets, answers HTTP 204."""

    def __init__(self) -> None:
        self.scopes: list[Scope] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scopes.append(scope)
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            await receive()
        elif scope["type"] == "http":
            await receive()
            await send({"type": "http.response.start", "status": 204})
            await send({"type": "http.response.body"})


async def open_socket(app: Any, headers: list[tuple[bytes, bytes]]) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(app, "/ws/", headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


# -- users -------------------------------------------------------------------------------------


def describe(user: Any) -> str:
    return str(user.get_username()) if user.is_authenticated else "anonymous"


class AsyncWhoAmI(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await self.accept()
        await self.send(text_data=describe(self.scope["user"]))  # read directly, as in Channels


class SyncWhoAmI(WebsocketConsumer):
    def connect(self) -> None:
        self.accept()
        self.send(text_data=describe(self.scope["user"]))


class HttpWhoAmI(AsyncHttpConsumer):
    async def handle(self, body: bytes) -> None:
        await self.send_response(200, describe(self.scope["user"]).encode())
