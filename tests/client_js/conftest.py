"""Fixtures of the JS client's browser tests: a topics server in its own uvicorn process
(restartable on its port) and Debian's Chromium through Playwright."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from channelworks.layers.redis import RedisChannelLayer
from tests.layers.backends import redis_reachable, require_service

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHANNELWORKS_CHROMIUM", "/usr/bin/chromium")
#: whether the Redis layer tracks presence (issue #14; it landed in the same session as these)
REDIS_PRESENCE = "presence" in RedisChannelLayer.extensions
needs_presence = pytest.mark.skipif(not REDIS_PRESENCE, reason="the Redis layer has no presence")
#: seconds the server may take to listen (a cold start on a busy machine)
STARTUP = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class TopicsServer:
    """``tests.client_js.app`` under uvicorn in a subprocess; ``stop()`` and ``start()`` again
    restart it on the same port, with the same Redis prefix (the history survives)."""

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = log
        self.env = {**os.environ, "CW_JS_PREFIX": f"cwjs-{uuid.uuid4().hex[:12]}"}
        self.env.pop("DJANGO_SETTINGS_MODULE", None)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = ["-m", "uvicorn", "tests.client_js.app:application", "--host", "127.0.0.1"]
        args += ["--port", str(self.port), "--lifespan", "off", "--log-level", "warning"]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, *args], cwd=ROOT, env=self.env, stdout=out, stderr=out
            )
        deadline = time.monotonic() + STARTUP
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited:\n{self.output()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"the server did not listen:\n{self.output()}") from None
                time.sleep(0.05)
            else:
                return

    def stop(self) -> int:
        """Stop as CONTROL-C does (uvicorn closes its sockets); return the exit status."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"the server did not stop:\n{self.output()}") from None

    def pause(self) -> None:
        """Freeze the process (SIGSTOP): its sockets stay open and answer nothing."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def broadcast(self, topic: str, event: str, payload: str) -> None:
        """Broadcast from another process, through the layer (works while the server is down)."""
        subprocess.run(
            [sys.executable, "-m", "tests.client_js.app", topic, event, payload],
            cwd=ROOT,
            env=self.env,
            check=True,
            capture_output=True,
            timeout=60,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[TopicsServer]:
    require_service("Redis", redis_reachable())
    server = TopicsServer(tmp_path / "server.log")
    server.start()
    yield server
    server.resume()  # in case a test failed while it was paused
    server.stop()
    assert "Traceback" not in server.output(), server.output()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    require_service("Chromium", os.path.exists(CHROMIUM))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser: Browser, server: TopicsServer) -> Iterator[Callable[[], Page]]:
    """Pages in browser contexts of their own (two contexts: two browsers), on the server's
    page with the client loaded."""
    contexts = []

    def make() -> Page:
        context = browser.new_context()
        context.set_default_timeout(20_000)
        contexts.append(context)
        page = context.new_page()
        page.goto(server.url)
        page.wait_for_function("() => typeof Channelworks === 'object'")
        return page

    yield make
    for context in contexts:
        context.close()
