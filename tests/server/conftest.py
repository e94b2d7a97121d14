"""Fixtures for tests against real servers: a configured in-memory layer and ``serve``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from typing import Protocol

import pytest

from channelworks.layers import InMemoryChannelLayer, channel_layers
from channelworks.types import ASGIApp
from tests.server.live import LiveServer, Uvicorn


class Serve(Protocol):
    def __call__(self, app: ASGIApp, *, ws_max_size: int = ...) -> Awaitable[LiveServer]: ...


@pytest.fixture(autouse=True)
def layer(request: pytest.FixtureRequest) -> InMemoryChannelLayer:
    """The in-memory layer as ``default``, configured after the suite-wide reset.

    The server runs in the test's own event loop, so the test and the consumers share it.
    """
    request.getfixturevalue("_no_configured_layers")  # reset first, then configure
    channel_layers.configure({"default": {"BACKEND": "channelworks.layers.InMemoryChannelLayer"}})
    default = channel_layers["default"]
    assert isinstance(default, InMemoryChannelLayer)
    return default


@pytest.fixture
async def serve(request: pytest.FixtureRequest) -> AsyncIterator[Serve]:
    """Start uvicorn in this event loop for an app: ``live = await serve(app)``.

    The WebSocket implementation is uvicorn's ``websockets-sansio`` unless the test
    parametrizes this fixture indirectly with another one. Every server is stopped at teardown.
    """
    ws = getattr(request, "param", "websockets-sansio")
    started: list[Uvicorn] = []

    async def start(app: ASGIApp, *, ws_max_size: int = 16 * 1024 * 1024) -> LiveServer:
        server = Uvicorn(app, ws=ws, ws_max_size=ws_max_size)
        started.append(server)
        return await server.start()

    yield start
    for server in reversed(started):
        await server.stop()
