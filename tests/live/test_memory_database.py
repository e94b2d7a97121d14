"""The live server on an in-memory SQLite database, from Django's runner and from pytest.

Each run is a fresh Python process with ``tests.live.memory_settings``; every wait is bounded.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = "tests.live.memory_settings"
#: tests in ``tests/live/memory_cases.py``
CASES = 7


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": SETTINGS}
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_django_test_runner_in_parallel_processes() -> None:
    # Each worker process clones the in-memory database and binds its own free port.
    done = run(
        "-W",
        "error::ResourceWarning",
        "-m",
        "django",
        "test",
        "tests.live.memory_cases",
        "--parallel",
        "2",
        "-v",
        "2",
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert f"Ran {CASES} tests" in output
    assert "Cloning test database for alias 'default'" in output
    assert "\nOK" in output


def test_pytest_django() -> None:
    done = run(
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--ds={SETTINGS}",
        "tests/live/memory_cases.py",
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert f"{CASES} passed" in output
