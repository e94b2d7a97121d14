"""Smoke tests under daphne and hypercorn, each run as a subprocess serving ``apps.smoke``.

The app's in-memory layer lives in the server process, so a group broadcast between two
connections to the same server goes through it.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.live import TIMEOUT, LiveServer, recv, recv_text, refused_status, ws_connect

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.server.apps.smoke:application"
#: seconds a server process may take to start listening (daphne imports Twisted)
STARTUP = 15.0

COMMANDS = {
    "daphne": ["-m", "daphne", "-b", "127.0.0.1", "-p", "{port}", APP],
    "hypercorn": ["-m", "hypercorn", "--bind", "127.0.0.1:{port}", APP],
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_listening(
    proc: subprocess.Popen[bytes], port: int, log: Path, timeout: float = STARTUP
) -> None:
    """Block until the server accepts connections on ``port``; fail if it exits or times out."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}:\n{log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"server not listening:\n{log.read_text()}") from None
            time.sleep(0.05)
        else:
            return


@pytest.fixture(scope="module", params=sorted(COMMANDS))
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """One server process per module and server; the tests share it."""
    port = free_port()
    args = [arg.format(port=port) for arg in COMMANDS[request.param]]
    log = tmp_path_factory.mktemp(request.param) / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, *args], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            wait_listening(proc, port, log)
            yield LiveServer("127.0.0.1", port)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def test_echo(live: LiveServer) -> None:
    async with ws_connect(live.ws("/ws/echo/")) as ws:
        await ws.send("hello")
        assert await recv(ws) == "hello"
        await ws.send(b"\x00\xff")
        assert await recv(ws) == b"\x00\xff"


async def test_group_broadcast_across_two_connections(live: LiveServer) -> None:
    async with ws_connect(live.ws("/ws/chat/")) as a, ws_connect(live.ws("/ws/chat/")) as b:
        assert (await recv_text(a)).startswith("channel:")
        assert (await recv_text(b)).startswith("channel:")
        await a.send("from a")
        assert await recv(a) == "from a"
        assert await recv(b) == "from a"
        await b.send("from b")
        assert await recv(a) == "from b"
        assert await recv(b) == "from b"


async def test_unknown_path_is_refused(live: LiveServer) -> None:
    assert await refused_status(live.ws("/ws/nowhere/")) == 403
    async with ws_connect(live.ws("/ws/echo/")) as ws:
        await ws.send("still serving")
        assert await recv(ws) == "still serving"
