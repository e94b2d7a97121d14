"""Run ``python -m django COMMAND`` in a subprocess and follow its output, with bounded waits.

Each process starts in a session of its own, so that ``stop`` and the final clean-up reach the
reloader's child too; the clean-up always runs, whatever the test did.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = "tests.commands.project.settings"

#: seconds a process may take to start (import Django, uvicorn, run the checks)
START_TIMEOUT = 30.0
#: seconds any other single wait may take
TIMEOUT = 10.0


class Process:
    """A running command whose combined stdout and stderr is read line by line."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        env = {
            **os.environ,
            **(env or {}),
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(ROOT),
            "DJANGO_SETTINGS_MODULE": SETTINGS,
        }
        env.pop("DJANGO_AUTORELOAD_ENV", None)  # the reloader's parent must start as one
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "django", *args, f"--settings={SETTINGS}"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self._queue.put(line)
        self._queue.put(None)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = TIMEOUT) -> re.Match[str]:
        """The first line from now on that matches ``pattern``; fail after ``timeout`` s."""
        compiled = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = self._queue.get(timeout=max(remaining, 0))
            except queue.Empty:
                raise AssertionError(
                    f"No line matching {pattern!r} within {timeout} s; output:\n{self.output}"
                ) from None
            if line is None:
                self._queue.put(None)  # let later waits see the end too
                raise AssertionError(
                    f"Exited ({self.popen.poll()}) before {pattern!r}; output:\n{self.output}"
                )
            self.lines.append(line)
            match = compiled.search(line)
            if match is not None:
                return match

    def send_signal(self, signum: signal.Signals) -> None:
        self.popen.send_signal(signum)

    def wait(self, timeout: float = TIMEOUT) -> int:
        """The exit status; fail if the process has not exited within ``timeout`` s."""
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"Still running after {timeout} s; output:\n{self.drain()}"
            ) from None

    def drain(self) -> str:
        """Everything read so far, including lines no ``wait_for`` looked at."""
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                return self.output
            if line is None:
                self._queue.put(None)
                return self.output
            self.lines.append(line)

    def kill(self) -> None:
        """Kill the process and everything it started (its session), then reap it."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(TIMEOUT)
        # The pipe ends once every process of the session is gone; close it after the reader.
        self._reader.join(TIMEOUT)
        if self.popen.stdout is not None and not self._reader.is_alive():
            self.popen.stdout.close()


@contextlib.contextmanager
def django_command(*args: str, env: dict[str, str] | None = None) -> Iterator[Process]:
    """Run ``python -m django *args`` with the project's settings; always killed at the end.

    ``env`` adds to this process's environment.
    """
    process = Process(list(args), env)
    try:
        yield process
    finally:
        process.kill()
