"""Blocking HTTP and WebSocket clients for live server tests; every wait is bounded."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from websockets.sync.client import ClientConnection, connect

#: seconds any single wait may take before the test fails
TIMEOUT = 5.0


def http(url: str, data: dict[str, str] | None = None) -> tuple[int, str]:
    """GET ``url`` (POST ``data`` form-encoded if given); return the status and the body."""
    body = None if data is None else urllib.parse.urlencode(data).encode()
    try:
        with urllib.request.urlopen(url, data=body, timeout=TIMEOUT) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode()


def websocket(url: str) -> ClientConnection:
    """Open a WebSocket; use it as a context manager so it is closed."""
    return connect(url, open_timeout=TIMEOUT, close_timeout=TIMEOUT)


def recv_json(ws: ClientConnection) -> Any:
    return json.loads(ws.recv(timeout=TIMEOUT))


def accepts_connections(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something listens on ``host:port`` (a refused TCP connect means no)."""
    try:
        socket.create_connection((host, port), timeout=TIMEOUT).close()
    except ConnectionRefusedError:
        return False
    return True
