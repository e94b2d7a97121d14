"""Helpers shared by the demo's tests."""

from __future__ import annotations

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
    """The code and reason the application closed ``communicator`` with, next."""
    message = await communicator.receive_output(1)
    assert message["type"] == "websocket.close", message
    await communicator.disconnect(message["code"])  # what the server answers a close with
    return message["code"], message.get("reason", "")


async def enter(path: str, session: str) -> WebsocketCommunicator:
    """A chat room's socket, past the ``resumed`` frame an accepted one starts with."""
    socket = await open_socket(path, session)
    frame = await socket.receive_json_from()
    assert frame["type"] == "resumed", frame
    return socket
