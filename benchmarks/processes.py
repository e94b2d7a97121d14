"""Running a benchmark helper process (client or layer benchmark) and reading its JSON line."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from benchmarks.server import Server

#: time a process may take beyond its own limit before it is killed
KILL_MARGIN = 30.0


class ProcessFailed(RuntimeError):
    """A helper process exited non-zero, timed out or printed no result."""


def run_module(args: Sequence[str], timeout: float) -> dict[str, Any]:
    """Run ``python -m ARGS``; return the JSON of its last output line (killed on timeout)."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ProcessFailed(f"{' '.join(args[:2])} timed out after {timeout:.0f} s") from exc
    lines = done.stdout.strip().splitlines()
    if done.returncode or not lines:
        raise ProcessFailed(
            f"{' '.join(args[:2])} exited {done.returncode}: {done.stderr.strip()[-2000:]}"
        )
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def run_client(
    kind: str, server: Server, path: str, time_limit: float, **options: object
) -> dict[str, Any]:
    """Run ``benchmarks.clients KIND`` against ``server``; options become ``--name value``."""
    args = ["benchmarks.clients", kind, server.url(path), "--server-pid", str(server.pid)]
    for name, value in options.items():
        args += [f"--{name.replace('_', '-')}", str(value)]
    args += ["--time-limit", str(time_limit)]
    return run_module(args, time_limit + KILL_MARGIN)
