"""Redis servers of the tests' own, on free ports: plain, Sentinel, Cluster.

Every server is started with ``--save "" --appendonly no`` (nothing written to disk but the
files Sentinel and Cluster need, in a temporary directory) and stopped in a ``finally`` by
the context managers below, first with ``SHUTDOWN NOSAVE``, then by signal if it lingers.
Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.layers.backends import require_service

START_TIMEOUT = 10.0


def require_redis_server() -> None:
    """Skip (or fail, with CHANNELWORKS_REQUIRE_SERVICES=1) without redis-server/redis-cli."""
    require_service(
        "redis-server", shutil.which("redis-server") is not None and bool(shutil.which("redis-cli"))
    )


def free_port(*, bus: bool = False) -> int:
    """A TCP port free on 127.0.0.1 now (with ``bus``, port + 10000 is free too)."""
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port + 10000 > 65535 and bus:
            continue
        if not bus or _free(port + 10000):
            return port
    raise RuntimeError("no free port pair found")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cli(port: int, *args: str, timeout: float = 10.0) -> str:
    done = subprocess.run(
        ["redis-cli", "-p", str(port), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return done.stdout.strip()


def wait_until(check: object, timeout: float = START_TIMEOUT, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


class RedisServer:
    """A ``redis-server`` process on ``port``; ``start()``/``stop()`` may be repeated."""

    def __init__(self, port: int, directory: Path, *args: str) -> None:
        self.port = port
        self.directory = directory
        self.args = args
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [
            "redis-server",
            *self.args,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.directory),
        ]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_until(lambda: cli(self.port, "ping") == "PONG", what=f"redis-server :{self.port}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            cli(self.port, "shutdown", "nosave", timeout=5)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@contextlib.contextmanager
def redis_server(tmp_path: Path, *args: str) -> Iterator[RedisServer]:
    """A plain server on a free port, stopped on exit."""
    require_redis_server()
    server = RedisServer(free_port(), tmp_path, *args)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def sentinel_setup(tmp_path: Path, master_name: str = "mymaster") -> Iterator[tuple[int, int]]:
    """A master and one Sentinel watching it: yields (master port, sentinel port)."""
    require_redis_server()
    master = RedisServer(free_port(), tmp_path)
    sentinel_port = free_port()
    config = tmp_path / "sentinel.conf"
    config.write_text(
        f"port {sentinel_port}\n"
        "bind 127.0.0.1\n"
        f"dir {tmp_path}\n"
        f"sentinel monitor {master_name} 127.0.0.1 {master.port} 1\n"
        f"sentinel down-after-milliseconds {master_name} 5000\n"
    )
    sentinel: subprocess.Popen[bytes] | None = None
    try:
        master.start()
        sentinel = subprocess.Popen(
            ["redis-server", str(config), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(
            lambda: (
                cli(sentinel_port, "sentinel", "get-master-addr-by-name", master_name).splitlines()[
                    -1:
                ]
                == [str(master.port)]
            ),
            what="Sentinel to know the master",
        )
        yield master.port, sentinel_port
    finally:
        if sentinel is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                cli(sentinel_port, "shutdown", "nosave", timeout=5)
            try:
                sentinel.wait(timeout=5)
            except subprocess.TimeoutExpired:
                sentinel.kill()
                sentinel.wait(timeout=5)
        master.stop()


@contextlib.contextmanager
def cluster_setup(tmp_path: Path, nodes: int = 3) -> Iterator[list[int]]:
    """``nodes`` primaries forming one cluster (no replicas): yields their ports."""
    require_redis_server()
    servers = []
    for index in range(nodes):
        directory = tmp_path / f"node{index}"
        directory.mkdir()
        port = free_port(bus=True)
        servers.append(
            RedisServer(
                port,
                directory,
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                f"nodes-{port}.conf",
                "--cluster-node-timeout",
                "5000",
            )
        )
    try:
        for server in servers:
            server.start()
        addresses = [f"127.0.0.1:{server.port}" for server in servers]
        subprocess.run(
            ["redis-cli", "--cluster", "create", *addresses, "--cluster-yes"],
            capture_output=True,
            timeout=30,
            check=True,
        )
        for server in servers:
            wait_until(
                lambda port=server.port: "cluster_state:ok" in cli(port, "cluster", "info"),
                timeout=30,
                what="the cluster to be ready",
            )
        yield [server.port for server in servers]
    finally:
        for server in servers:
            server.stop()


__all__ = [
    "RedisServer",
    "cli",
    "cluster_setup",
    "free_port",
    "redis_server",
    "require_redis_server",
    "sentinel_setup",
    "wait_until",
]
