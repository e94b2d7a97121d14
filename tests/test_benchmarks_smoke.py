"""The benchmark command runs end to end (``--quick``) and produces figures.

Only that: timings are never asserted here (benchmarks/README.md has the targets). Channels
is not installed in the test environment, so only raw ASGI and channelworks are run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import __main__ as command

ROOT = Path(__file__).resolve().parent.parent


def test_quick_run_produces_figures(tmp_path: Path) -> None:
    report = tmp_path / "results.json"
    args = ["--quick", "--frameworks", "raw,channelworks", "--json", str(report)]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Targets:" in done.stdout
    rows = {row["key"]: row for row in json.loads(report.read_text())["rows"]}
    for key in ("echo", "echo_sync", "fanout", "group_send_10", "send_receive", "memory_rss"):
        assert rows[key]["errors"] == {}, key
        assert isinstance(rows[key]["values"]["channelworks"], float), key
    for key in ("echo", "fanout", "memory_rss"):
        assert isinstance(rows[key]["values"]["raw"], float), key


def test_channels_missing_is_skipped_with_a_note(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(command, "channels_installed", lambda: False)
    assert command.main(["--quick", "--only", "group_send", "--frameworks", "channels"]) == 0
    out = capsys.readouterr().out
    assert "Django Channels is not installed" in out
    assert "Targets:" in out
