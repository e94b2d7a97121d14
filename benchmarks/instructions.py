"""Server instructions per echo round trip, counted by callgrind: a figure the load of the
machine does not move.

``python -m benchmarks.instructions`` runs each server (``benchmarks.serve``, the same uvicorn
settings as the benchmark) under ``valgrind --tool=callgrind``, warms it up, then counts the
instructions the server process executes for two numbers of round trips (10 connections, one
frame at a time each) and prints the difference per round trip, beside raw's. Startup, imports
and the warm-up are not counted; the event loop's idle ticks are, and make the figure move by
about 1%. The ratio to raw tells the framework's share of the work; throughput ratios in the
main benchmark come out a few percent lower than its inverse (instructions are not cycles).
For comparing two versions of the code on a busy machine, not a target of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import websockets

from benchmarks.server import HOST, free_port

APPS = {
    "raw": "benchmarks.apps.raw:application",
    "channelworks": "benchmarks.apps.channelworks_app:application",
    "channels": "benchmarks.apps.channels_app:application",
}
CONNECTIONS = 10


@contextlib.contextmanager
def counted_server(app: str, out: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """``benchmarks.serve APP PORT`` under callgrind, with collection zeroed on demand."""
    port = free_port()
    process = subprocess.Popen(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}/callgrind.%p",
            sys.executable,
            "-m",
            "benchmarks.serve",
            app,
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300  # an import under valgrind takes a while
        while not _accepts(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{app} did not start under valgrind")
            time.sleep(0.2)
        yield process, port
    finally:
        process.terminate()
        process.wait(timeout=60)


def _accepts(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        return probe.connect_ex((HOST, port)) == 0


async def _round_trips(port: int, path: str, total: int) -> None:
    async def one(socket: websockets.ClientConnection, count: int) -> None:
        for _ in range(count):
            await socket.send("hello world")
            await socket.recv()

    url = f"ws://{HOST}:{port}/{path}"
    sockets = [
        await websockets.connect(url, open_timeout=120, ping_interval=None)
        for _ in range(CONNECTIONS)
    ]
    try:
        await asyncio.gather(*(one(socket, total // CONNECTIONS) for socket in sockets))
    finally:
        for socket in sockets:
            await socket.close()


def _counted(process: subprocess.Popen[bytes], out: Path, port: int, path: str, n: int) -> int:
    """Instructions the server executed for ``n`` round trips (collection zeroed first)."""
    subprocess.run(["callgrind_control", "-z", str(process.pid)], check=True, capture_output=True)
    asyncio.run(_round_trips(port, path, n))
    before = set(out.glob(f"callgrind.{process.pid}.*"))
    subprocess.run(["callgrind_control", "-d", str(process.pid)], check=True, capture_output=True)
    (dump,) = set(out.glob(f"callgrind.{process.pid}.*")) - before
    for line in dump.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {dump}")


def per_round_trip(framework: str, path: str, small: int, large: int) -> float:
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory)
        with counted_server(APPS[framework], out) as (process, port):
            asyncio.run(_round_trips(port, path, small))  # warm-up
            low = _counted(process, out, port, path, small)
            high = _counted(process, out, port, path, large)
    return (high - low) / (large - small)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.instructions")
    parser.add_argument(
        "--paths",
        default="echo",
        help="channelworks routes to count, comma-separated (echo, echo-off, "
        "echo-unobserved, echo-sync...); raw always counts its echo",
    )
    parser.add_argument("--frameworks", default="raw,channelworks")
    parser.add_argument("--round-trips", type=int, default=2000, help="counted (default 2000)")
    args = parser.parse_args(argv)
    small = args.round_trips // 2
    large = small + args.round_trips
    rows: list[tuple[str, str, float]] = []
    for framework in args.frameworks.split(","):
        paths = ["echo"] if framework != "channelworks" else args.paths.split(",")
        for path in paths:
            rows.append((framework, path, per_round_trip(framework, path, small, large)))
    raw = next((count for framework, _, count in rows if framework == "raw"), None)
    print("server instructions per echo round trip (callgrind)")
    for framework, path, count in rows:
        ratio = f"  {count / raw:.3f}x raw" if raw else ""
        print(f"  {framework:13s} /{path:18s} {count:10,.0f}{ratio}")


if __name__ == "__main__":
    main()
