"""Live test classes that ``test_lifecycle`` runs with unittest's own suite machinery.

Not collected by pytest (the file name does not start with ``test_``): each class is run on
purpose, in a chosen order, and ``PORTS`` records what they saw.
"""

from __future__ import annotations

import contextlib
import urllib.parse

import pytest
from websockets.sync.client import ClientConnection

from channelworks.testing.live import ChannelsLiveServerTestCase
from channelworks.types import Receive, Scope, Send
from tests.live.clients import TIMEOUT, accepts_connections, websocket

#: class name -> the port its server listened on
PORTS: dict[str, int] = {}
#: client sockets a test left open on purpose: the caller closes them by leaving the stack
OPEN_SOCKETS = contextlib.ExitStack()
OPEN_CONNECTIONS: list[ClientConnection] = []


def record_port(case: type[ChannelsLiveServerTestCase]) -> int:
    port = urllib.parse.urlsplit(case.live_server_url).port
    assert port is not None
    PORTS[case.__name__] = port
    return port


class EchoCase(ChannelsLiveServerTestCase):
    application = "tests.live.asgi.application"

    def check_echo(self) -> None:
        record_port(type(self))
        with websocket(f"{self.live_server_ws_url}/ws/echo/") as ws:
            ws.send("ping")
            assert ws.recv(timeout=TIMEOUT) == "ping"


class First(EchoCase):
    def test_serves(self) -> None:
        self.check_echo()
        with pytest.raises(RuntimeError, match="FirstChild has no live server"):
            _ = FirstChild.live_server_url


class FirstChild(First):
    """Never set up while ``First`` runs: it must not report ``First``'s server."""


class Second(EchoCase):
    def test_serves_while_first_is_stopped(self) -> None:
        self.check_echo()
        assert not accepts_connections(PORTS["First"])


class LeavesSocketOpen(EchoCase):
    """Opens a WebSocket and leaves it to the server's shutdown."""

    def test_opens_a_socket(self) -> None:
        ws = OPEN_SOCKETS.enter_context(websocket(f"{self.live_server_ws_url}/ws/echo/"))
        OPEN_CONNECTIONS.append(ws)
        ws.send("still here")
        assert ws.recv(timeout=TIMEOUT) == "still here"


class FailsAfterServerStarts(EchoCase):
    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        record_port(cls)
        raise RuntimeError("setUpClass failed after the server started")

    def test_never_runs(self) -> None:
        raise AssertionError("setUpClass failed; no test may run")


class BadOption(EchoCase):
    uvicorn_options = {"no_such_option": 1}

    def test_never_runs(self) -> None:
        raise AssertionError("the server was not made; no test may run")


async def refuse_to_start(scope: Scope, receive: Receive, send: Send) -> None:
    """An application whose lifespan startup fails."""
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "refused on purpose"})


class StartupFails(ChannelsLiveServerTestCase):
    application = refuse_to_start
    uvicorn_options = {"lifespan": "on"}

    def test_never_runs(self) -> None:
        raise AssertionError("the server did not start; no test may run")
