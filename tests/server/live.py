"""Helpers for tests against real servers: start uvicorn in-process, talk over real sockets.

Every wait is bounded (``TIMEOUT`` seconds) so that a hang fails the test instead of blocking.
"""

from __future__ import annotations

import asyncio
import http.client
import socket
from dataclasses import dataclass, field

import uvicorn
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from channelworks.types import ASGIApp

#: seconds any single wait may take before the test fails
TIMEOUT = 5.0


@dataclass
class LiveServer:
    """A server listening on ``host:port``."""

    host: str
    port: int

    def ws(self, path: str) -> str:
        return f"ws://{self.host}:{self.port}{path}"

    def http(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"


@dataclass
class Uvicorn:
    """An in-process uvicorn serving one application on a socket bound to a free port."""

    app: ASGIApp
    ws: str = "websockets-sansio"
    ws_max_size: int = 16 * 1024 * 1024  # uvicorn's default
    _server: uvicorn.Server | None = field(default=None, init=False)
    _task: asyncio.Task[None] | None = field(default=None, init=False)
    _sock: socket.socket = field(default_factory=socket.socket, init=False)

    async def start(self) -> LiveServer:
        self._sock.bind(("127.0.0.1", 0))
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            log_config=None,
            lifespan="off",
            ws=self.ws,
            ws_max_size=self.ws_max_size,
            timeout_graceful_shutdown=int(TIMEOUT),
        )
        server = self._server = uvicorn.Server(config)
        task = self._task = asyncio.create_task(server.serve(sockets=[self._sock]))
        async with asyncio.timeout(TIMEOUT):
            while not server.started:
                if task.done():
                    task.result()  # raises what stopped the server
                    raise RuntimeError("uvicorn exited before it started")
                await asyncio.sleep(0.01)
        host, port = self._sock.getsockname()
        return LiveServer(host, port)

    async def stop(self) -> None:
        """Ask the server to exit and wait for it (it waits for open connections first)."""
        try:
            if self._server is not None and self._task is not None:
                self._server.should_exit = True
                async with asyncio.timeout(2 * TIMEOUT):
                    await self._task
        finally:
            self._sock.close()


def ws_connect(url: str, subprotocols: list[str] | None = None) -> connect:
    """A websockets client connect with bounded handshake and close."""
    return connect(
        url,
        subprotocols=subprotocols,  # type: ignore[arg-type]
        open_timeout=TIMEOUT,
        close_timeout=TIMEOUT,
    )


async def recv(ws: ClientConnection) -> str | bytes:
    async with asyncio.timeout(TIMEOUT):
        return await ws.recv()


async def recv_text(ws: ClientConnection) -> str:
    message = await recv(ws)
    assert isinstance(message, str), f"expected a text frame, got {message!r}"
    return message


async def closed(ws: ClientConnection) -> tuple[int | None, str | None]:
    """Wait for the closing handshake; return the close code and reason the server sent."""
    async with asyncio.timeout(TIMEOUT):
        await ws.wait_closed()
    return ws.close_code, ws.close_reason


async def refused_status(url: str) -> int:
    """Open a WebSocket the server must refuse; return the HTTP status of the refusal."""
    try:
        ws = await ws_connect(url)
    except InvalidStatus as exc:
        return exc.response.status_code
    await ws.close()
    raise AssertionError(f"{url} was accepted; expected the handshake to be refused")


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


def http_request(live: LiveServer, method: str, path: str, body: bytes | None = None) -> Response:
    """A blocking HTTP request with ``http.client``; run it with ``asyncio.to_thread``."""
    conn = http.client.HTTPConnection(live.host, live.port, timeout=TIMEOUT)
    try:
        conn.request(method, path, body=body)
        response = conn.getresponse()
        data = response.read()
        headers = {k.lower(): v for k, v in response.getheaders()}
        return Response(response.status, headers, data)
    finally:
        conn.close()
