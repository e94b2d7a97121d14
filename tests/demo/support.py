"""Helpers shared by the demo's tests."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client

from channelworks.auth import AuthMiddlewareStack
from channelworks.demo.routing import websocket_urlpatterns
from channelworks.routing import URLRouter
from channelworks.testing import WebsocketCommunicator

#: the demo's socket routes with sessions and users, as asgi.py has them inside the origin check
sockets = AuthMiddlewareStack(URLRouter(websocket_urlpatterns))


def session_of(user: User) -> str:
    """The session key of ``user`` logged in the way a browser is, by Django."""
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


async def open_socket(path: str, session: str | None = None) -> WebsocketCommunicator:
    """A socket to the demo's routes, with ``session``'s cookie; fails unless accepted."""
    headers = []
    if session is not None:
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={session}".encode()))
    communicator = WebsocketCommunicator(sockets, path, headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def close_code(communicator: WebsocketCommunicator) -> tuple[int, str]:
    """The code and reason the application closed ``communicator`` with (frames before the
    close are skipped)."""
    message = await communicator.receive_output(1)
    while message["type"] == "websocket.send":
        message = await communicator.receive_output(1)
    assert message["type"] == "websocket.close", message
    await communicator.disconnect(message["code"])  # what the server answers a close with
    return message["code"], message.get("reason", "")


#: the frames of presence, which come and go with other sockets: skipped by ``Topics``
PRESENCE = ("presence_state", "presence_diff")


class Topics:
    """A page's topics socket (``/ws/topics/``) in a test: joins, pushes, and the events its
    topics get (presence frames skipped), as ``[join_ref, ref, topic, event, payload,
    position?]`` frames (docs/protocol.md)."""

    def __init__(self, socket: WebsocketCommunicator) -> None:
        self.socket = socket
        self.refs = 0
        self.join_refs: dict[str, str] = {}
        #: frames read while waiting for another one
        self.backlog: list[list[Any]] = []

    @classmethod
    async def open(cls, session: str | None = None) -> Topics:
        return cls(await open_socket("/ws/topics/", session))

    def ref(self) -> str:
        self.refs += 1
        return str(self.refs)

    async def frame(self, timeout: float = 1) -> list[Any]:
        """The next frame that is not presence."""
        if self.backlog:
            return self.backlog.pop(0)
        while True:
            frame: list[Any] = await self.socket.receive_json_from(timeout)
            if frame[3] not in PRESENCE:
                return frame

    async def reply(self, ref: str) -> dict[str, Any]:
        """The payload of the reply to ``ref``; other frames before it wait in the backlog."""
        skipped: list[list[Any]] = []
        while True:
            frame: list[Any] = await self.socket.receive_json_from(1)
            if frame[3] == "reply" and frame[1] == ref:
                self.backlog.extend(skipped)
                payload: dict[str, Any] = frame[4]
                return payload
            if frame[3] not in PRESENCE:
                skipped.append(frame)

    async def join(self, topic: str, since: object = None) -> dict[str, Any]:
        """Join ``topic`` (with ``since``, a position); the reply's payload."""
        ref = self.ref()
        body: dict[str, Any] = {"params": {}}
        if since is not None:
            body["since"] = since
        await self.socket.send_json_to([ref, ref, topic, "join", body])
        self.join_refs[topic] = ref
        return await self.reply(ref)

    async def push(self, topic: str, event: str, payload: Any = None) -> dict[str, Any]:
        """Push ``event`` to ``topic``; the reply's payload."""
        ref = self.ref()
        message = {} if payload is None else payload
        await self.socket.send_json_to([self.join_refs.get(topic), ref, topic, event, message])
        return await self.reply(ref)

    async def event(self, topic: str, event: str) -> list[Any]:
        """The next frame of ``event`` on ``topic``; fails on any other frame first."""
        frame = await self.frame()
        assert frame[2:4] == [topic, event], frame
        return frame

    async def nothing(self) -> bool:
        """Whether nothing but presence arrives for a moment."""
        if self.backlog:
            return False
        while True:
            if await self.socket.receive_nothing(0.1):
                return True
            frame: list[Any] = await self.socket.receive_json_from()
            if frame[3] not in PRESENCE:
                self.backlog.append(frame)
                return False

    async def close(self) -> None:
        await self.socket.disconnect()


async def in_room(slug: str, session: str, since: object = None) -> Topics:
    """A page's topics socket that joined the room ``slug`` (``chat:<slug>``)."""
    page = await Topics.open(session)
    reply = await page.join(f"chat:{slug}", since)
    assert reply["status"] == "ok", reply
    return page
