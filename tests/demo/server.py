"""``channelworks demo`` run for real, as a subprocess, for the end-to-end tests."""

from __future__ import annotations

import http.cookiejar
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import IO

#: seconds the demo gets to migrate, seed and listen (a cold start on a busy machine)
START_TIMEOUT = 90
SERVING = re.compile(r"Serving on (http://\S+/)")


class DemoServer:
    """The demo command in a subprocess: ``start()`` returns its URL, ``stop()`` its output."""

    def __init__(self, data: Path, port: int = 0, extra: Sequence[str] = ()) -> None:
        self.data = data
        self.port = port
        self.extra = list(extra)
        self.process: subprocess.Popen[str] | None = None
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._lines: queue.Queue[str] = queue.Queue()
        self._readers: list[threading.Thread] = []

    def start(self) -> str:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHANNELWORKS_DEMO_")}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        args = ["demo", "--data", str(self.data), "--port", str(self.port), *self.extra]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "channelworks.cli", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        self._read(self.process.stdout, self.stdout, self._lines)
        self._read(self.process.stderr, self.stderr, None)
        while True:
            try:
                line = self._lines.get(timeout=START_TIMEOUT)
            except queue.Empty:
                self.stop()
                raise AssertionError(f"the demo did not start: {self.output()}") from None
            match = SERVING.search(line)
            if match:
                self.url = match.group(1)
                self.port = int(urllib.parse.urlsplit(self.url).port or 0)
                return self.url
            if line == "":  # the process ended
                raise AssertionError(f"the demo exited: {self.output()}")

    def _read(self, stream: IO[str], into: list[str], lines: queue.Queue[str] | None) -> None:
        def pump() -> None:
            for line in stream:
                into.append(line)
                if lines is not None:
                    lines.put(line)
            if lines is not None:
                lines.put("")

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        self._readers.append(reader)

    def stop(self, sig: signal.Signals = signal.SIGINT) -> int:
        """Stop the demo as CONTROL-C (or ``sig``) does; return its exit status."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"the demo did not stop: {self.output()}") from None
        finally:
            for reader in self._readers:
                reader.join(timeout=10)
            for stream in (self.process.stdout, self.process.stderr):
                if stream is not None:
                    stream.close()

    def output(self) -> str:
        return "".join(self.stdout) + "\n--- stderr ---\n" + "".join(self.stderr)


def login(base_url: str, username: str, password: str = "channelworks") -> str:
    """Log in through the demo's login form as a browser does; return the session key."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(base_url + "login/", timeout=10).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token is not None
    form = {"username": username, "password": password, "csrfmiddlewaretoken": token.group(1)}
    opener.open(base_url + "login/", urllib.parse.urlencode(form).encode(), timeout=10)
    sessions = [cookie.value or "" for cookie in jar if cookie.name == "sessionid"]
    assert sessions, f"{username} could not log in"
    return sessions[0]
