"""The ceiling: hand-written ASGI, no framework, no channel layer.

Raw has no sync flavour: ``/echo-sync`` is its echo and ``/room-sync`` its room, so that the
sync consumers' figures have the same ceiling as the async ones.

``/room`` keeps the ``send`` callables of connected sockets in a set and loops over them in
the task of the socket that received the frame: the cheapest in-process broadcast there is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_room: set[Send] = set()


async def application(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "websocket":
        return
    connect = await receive()
    if connect["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    if scope["path"] in ("/room", "/room-sync"):
        await _serve_room(receive, send)
    else:
        await _serve_echo(receive, send)


async def _serve_echo(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message.get("bytes")})


async def _serve_room(receive: Receive, send: Send) -> None:
    _room.add(send)
    try:
        while True:
            message = await receive()
            if message["type"] != "websocket.receive":
                return
            frame = {"type": "websocket.send", "text": message.get("text")}
            for member in list(_room):
                try:
                    await member(frame)
                except OSError:  # that member is going away; the others still get it
                    _room.discard(member)
    finally:
        _room.discard(send)
