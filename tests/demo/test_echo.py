"""The echo socket, and the origin check that guards every socket route of the site."""

from __future__ import annotations

import pytest
from django.test import override_settings

from channelworks.testing import WebsocketCommunicator
from tests.demo.support import open_socket


async def test_text_and_bytes_come_back_as_they_went() -> None:
    socket = await open_socket("/ws/echo/")
    await socket.send_to(text_data="<hello>")
    assert await socket.receive_from() == "<hello>"
    await socket.send_to(bytes_data=b"\x00\xff")
    assert await socket.receive_from() == b"\x00\xff"
    await socket.disconnect()


@pytest.mark.parametrize("path", ["/ws/echo/", "/ws/topics/"])
async def test_every_route_refuses_a_foreign_origin(path: str) -> None:
    from channelworks.demo.asgi import application

    foreign = WebsocketCommunicator(application, path, headers=[(b"origin", b"https://evil.test")])
    assert await foreign.connect() == (False, 1008)
    await foreign.wait()


async def test_the_sites_own_origin_is_allowed() -> None:
    from channelworks.demo.asgi import application

    own = WebsocketCommunicator(
        application, "/ws/echo/", headers=[(b"origin", b"http://testserver")]
    )
    assert (await own.connect())[0]
    await own.send_to(text_data="hi")
    assert await own.receive_from() == "hi"
    await own.disconnect()


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (b"http://192.168.1.5:8000", True),
        (b"http://192.168.1.5:3000", False),  # another server of the same machine
        (b"https://evil.test", False),
    ],
)
async def test_served_on_every_address_a_socket_must_come_from_the_host_it_asks(
    origin: bytes, allowed: bool
) -> None:
    """``--host 0.0.0.0`` makes ALLOWED_HOSTS ``*``, which no longer names the site's origin."""
    from channelworks.demo.asgi import application

    headers = [(b"host", b"192.168.1.5:8000"), (b"origin", origin)]
    socket = WebsocketCommunicator(application, "/ws/echo/", headers=headers)
    with override_settings(ALLOWED_HOSTS=["*"]):
        connected, code = await socket.connect()
    assert connected is allowed, code
    if allowed:
        await socket.disconnect()
    else:
        await socket.wait()
