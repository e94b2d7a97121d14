"""Starting and stopping one benchmark server process (``benchmarks.serve``) on 127.0.0.1.

``running_server`` is a context manager: the server is stopped when the block ends, however it
ends (SIGINT, then SIGKILL after a grace period). Its output goes to a temporary file whose
tail is shown if it fails to start.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

HOST = "127.0.0.1"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class Server:
    pid: int
    port: int

    def url(self, path: str) -> str:
        return f"ws://{HOST}:{self.port}{path}"


class ServerFailed(RuntimeError):
    """The server process exited or never accepted connections."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def running_server(app: str) -> Iterator[Server]:
    """Run ``python -m benchmarks.serve APP PORT`` until the block ends."""
    port = free_port()
    with tempfile.TemporaryFile(mode="w+") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.serve", app, str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:
            _wait_until_accepting(process, port, log)
            yield Server(pid=process.pid, port=port)
        finally:
            _stop(process)


def _wait_until_accepting(process: subprocess.Popen[bytes], port: int, log: IO[str]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerFailed(f"server exited with {process.returncode}:\n{_tail(log)}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise ServerFailed(f"server did not accept connections in {START_TIMEOUT} s:\n{_tail(log)}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT)


def _tail(log: IO[str], limit: int = 4000) -> str:
    log.seek(0)
    return log.read()[-limit:]
