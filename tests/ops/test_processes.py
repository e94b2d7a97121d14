"""Several server processes: one /metrics for all of them, and ``channelworks status``.

Each test starts its own uvicorn processes (tests/ops/apps.py) on free ports.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.layers.backends import redis_reachable, require_service
from tests.ops.exposition import value
from tests.server.live import recv_text, ws_connect
from tests.server.test_other_servers import ROOT, free_port, wait_listening

ECHO = {"route": "echo", "protocol": "websocket"}
#: seconds a condition polled across processes may take to hold
DEADLINE = 15.0


@contextmanager
def servers(
    count: int, env: dict[str, str], logs: Path
) -> Iterator[list[tuple[int, subprocess.Popen[bytes]]]]:
    started: list[tuple[int, subprocess.Popen[bytes]]] = []
    try:
        for index in range(count):
            port = free_port()
            log = logs / f"server{index}.log"
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "uvicorn",
                        "tests.ops.apps:application",
                        "--port",
                        str(port),
                        "--log-level",
                        "warning",
                        "--lifespan",
                        "off",
                    ],
                    cwd=ROOT,
                    env={**os.environ, **env},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            started.append((port, proc))
            wait_listening(proc, port, log)
        yield started
    finally:
        for _, proc in started:
            if proc.poll() is None:
                proc.terminate()
        for _, proc in started:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def scrape(port: int) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        body: bytes = response.read()
        return body


async def until(check: Callable[[], bool], what: str) -> None:
    """Poll ``check`` (a scrape) until it holds; fail with ``what`` after ``DEADLINE``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while not await asyncio.to_thread(check):
        if loop.time() > deadline:
            raise AssertionError(f"never true: {what}")
        await asyncio.sleep(0.1)


async def test_one_scrape_counts_every_process(tmp_path: Path) -> None:
    shared = tmp_path / "prometheus"
    shared.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(shared), "CHANNELWORKS_METRICS_FLUSH_INTERVAL": "0.1"}
    with servers(2, env, tmp_path) as [(port_a, _), (port_b, proc_b)]:
        async with ws_connect(f"ws://127.0.0.1:{port_a}/echo/") as a:
            b = await ws_connect(f"ws://127.0.0.1:{port_b}/echo/")
            for text in ("1", "2"):
                await a.send(text)
                assert await recv_text(a) == text
            for text in ("3", "4", "5"):
                await b.send(text)
                assert await recv_text(b) == text

            def both_counted() -> bool:
                text = scrape(port_a)  # process A answers for both
                return (
                    value(text, "channelworks_frames_total", route="echo", direction="in") == 5
                    and value(text, "channelworks_connections_open", **ECHO) == 2
                )

            await until(both_counted, "A's scrape shows 5 frames in and 2 open connections")
            # B's files are shared: B's own scrape says the same
            seen_by_b = scrape(port_b)
            assert value(seen_by_b, "channelworks_frames_total", route="echo", direction="out") == 5
            proc_b.kill()  # no close, no last flush: its gauges must go, its counters stay
            proc_b.wait()

            def b_gone() -> bool:
                text = scrape(port_a)
                return value(text, "channelworks_connections_open", **ECHO) == 1

            await until(b_gone, "the dead process's open connection is no longer counted")
            after = scrape(port_a)
            assert value(after, "channelworks_frames_total", route="echo", direction="in") == 5
            assert value(after, "channelworks_connections_accepted_total", **ECHO) == 2


@pytest.mark.services
async def test_status_command_lists_every_process(tmp_path: Path) -> None:
    require_service("Redis", redis_reachable())
    prefix = f"test-ops-{secrets.token_hex(4)}"
    env = {"OPS_TEST_PREFIX": prefix}
    with servers(2, env, tmp_path) as [(port_a, proc_a), (port_b, proc_b)]:
        async with (
            ws_connect(f"ws://127.0.0.1:{port_a}/echo/") as a,
            ws_connect(f"ws://127.0.0.1:{port_b}/echo/") as b,
        ):
            await a.send("hello")
            assert await recv_text(a) == "hello"
            await b.send("x")
            assert await recv_text(b) == "x"
            command = [
                sys.executable,
                "-m",
                "channelworks.cli",
                "status",
                "--settings",
                "tests.ops.status_settings",
                "--timeout",
                "2",
            ]
            run_env = {**os.environ, **env}
            run_env.pop("DJANGO_SETTINGS_MODULE", None)
            done = await asyncio.to_thread(
                subprocess.run,
                command,
                cwd=ROOT,
                env=run_env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 0, done.stderr
            out = done.stdout
            assert out.startswith("2 process(es) answered on layer 'default' (RedisChannelLayer)")
            assert f"pid {proc_a.pid} " in out
            assert f"pid {proc_b.pid} " in out
            assert out.count(" echo ") == 2  # one connection row per process
            assert "groups (members across processes):\n  room  2" in out
            assert "layer 'default' counters (summed over processes):" in out
            assert "redis_restarts=0" in out
            as_json = await asyncio.to_thread(
                subprocess.run,
                [*command, "--json"],
                cwd=ROOT,
                env=run_env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            snapshots = json.loads(as_json.stdout)
            assert sorted(s["pid"] for s in snapshots) == sorted([proc_a.pid, proc_b.pid])
            frames = {s["pid"]: s["connections"][0]["frames_in"] for s in snapshots}
            assert frames == {proc_a.pid: 1, proc_b.pid: 1}
