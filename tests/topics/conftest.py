"""Fixtures for topics tests: an in-memory layer as ``default`` and uvicorn on a free port."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from channelworks.layers import InMemoryChannelLayer, channel_layers
from channelworks.types import ASGIApp
from tests.server.live import LiveServer, Uvicorn

Serve = Callable[[ASGIApp], Awaitable[LiveServer]]


@pytest.fixture(autouse=True)
def layer(request: pytest.FixtureRequest) -> InMemoryChannelLayer:
    """The in-memory layer as ``default`` (configured after the suite-wide reset)."""
    request.getfixturevalue("_no_configured_layers")
    channel_layers.configure({"default": {"BACKEND": "channelworks.layers.InMemoryChannelLayer"}})
    default = channel_layers["default"]
    assert isinstance(default, InMemoryChannelLayer)
    return default


@pytest.fixture(autouse=True)
def _no_discovery(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first broadcast does not import the installed apps' ``topics`` modules here: the
    demo's ``room:{slug}`` (no history) would then be the last class of that pattern and
    replace the one these tests serve (the discovery test turns it back on)."""
    monkeypatch.setattr(sys.modules["channelworks.topics.broadcast"], "_discovered", True)


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """``live = await serve(app)``: uvicorn in this event loop; stopped at teardown."""
    started: list[Uvicorn] = []

    async def start(app: ASGIApp) -> LiveServer:
        server = Uvicorn(app)
        started.append(server)
        return await server.start()

    yield start
    for server in reversed(started):
        await server.stop()
