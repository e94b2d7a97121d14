"""The benchmark command runs end to end (``--quick``) and produces figures.

Only that: timings are never asserted here (benchmarks/README.md has the targets). Channels
and channels_redis are not installed in the test environment, so only raw ASGI and
channelworks are run; their absence is checked separately. The Redis figures need the Redis
at 127.0.0.1:6379 (skipped without it, unless ``CHANNELWORKS_REQUIRE_SERVICES=1``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import __main__ as command
from benchmarks.figures import rabbitmq as rabbitmq_figures
from benchmarks.figures import redis as redis_figures
from tests.layers.backends import (
    REDIS_URL,
    rabbitmq_reachable,
    redis_reachable,
    require_service,
)

ROOT = Path(__file__).resolve().parent.parent
IN_MEMORY = "echo,fanout,group_send,memory,limits"
REDIS = "redis_p2p,redis_group,redis_fanout"
RABBITMQ = "rabbitmq_p2p,rabbitmq_group"


def run_quick(tmp_path: Path, only: str) -> tuple[str, dict[str, Any]]:
    """Run ``--quick --only ONLY`` for raw and channelworks; its output and JSON rows."""
    report = tmp_path / "results.json"
    args = ["--quick", "--only", only, "--frameworks", "raw,channelworks", "--json", str(report)]
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
    return done.stdout, rows


def test_quick_run_produces_figures(tmp_path: Path) -> None:
    _, rows = run_quick(tmp_path, IN_MEMORY)
    for key in ("echo", "echo_sync", "fanout", "group_send_10", "send_receive", "memory_rss"):
        assert rows[key]["errors"] == {}, key
        assert isinstance(rows[key]["values"]["channelworks"], float), key
    for key in ("echo", "fanout", "memory_rss"):
        assert isinstance(rows[key]["values"]["raw"], float), key
    # the limits figure (channelworks only): cost on vs off, and the flood under each policy
    limits = ["limits_echo_on", "limits_echo_off", "flood_close_loaded", "flood_drop_loaded"]
    for key in limits:
        assert rows[key]["errors"] == {}, key
        assert isinstance(rows[key]["values"]["channelworks"], float), key


def test_quick_redis_figures(tmp_path: Path) -> None:
    require_service("Redis", redis_reachable())
    out, rows = run_quick(tmp_path, REDIS)
    keys = ["redis_p2p_1", "redis_p2p_5", "redis_group_send_20", "redis_group_round_20"]
    for key in [*keys, "redis_fanout"]:
        assert rows[key]["errors"] == {}, key
        assert isinstance(rows[key]["values"]["channelworks"], float), key
    assert isinstance(rows["redis_fanout"]["values"]["raw"], float)
    # every key the run made is gone
    prefix = re.search(r"keys under (cwbench-[0-9a-f]+)-\*", out)
    assert prefix is not None, out
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        assert list(client.scan_iter(match=f"{prefix.group(1)}*")) == []
    finally:
        client.close()


def test_quick_rabbitmq_figures(tmp_path: Path) -> None:
    require_service("RabbitMQ", rabbitmq_reachable())
    out, rows = run_quick(tmp_path, RABBITMQ)
    keys = ["rabbitmq_p2p_1", "rabbitmq_p2p_5"]
    keys += [f"rabbitmq_group_{kind}_{size}" for kind in ("send", "round") for size in (10, 100)]
    for key in keys:
        assert rows[key]["errors"] == {}, key
        assert isinstance(rows[key]["values"]["channelworks"], float), key
    assert "[NOT MEASURED] rabbitmq p2p" in out  # channels_rabbitmq was not asked for
    # the run's acknowledgement queues and groups exchanges are gone
    ctl = shutil.which("rabbitmqctl")
    if ctl is not None:
        left = subprocess.run(
            [ctl, "-q", "list_exchanges", "name"], capture_output=True, text=True, timeout=60
        )
        assert rabbitmq_figures.RUN not in left.stdout


def test_rabbitmq_missing_is_skipped_with_a_note(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(rabbitmq_figures, "rabbitmq_up", lambda: False)
    assert command.main(["--quick", "--only", RABBITMQ, "--frameworks", "channelworks"]) == 0
    out = capsys.readouterr().out
    assert "the RabbitMQ figures are skipped" in out
    assert "[NOT MEASURED] rabbitmq p2p" in out


def test_channels_missing_is_skipped_with_a_note(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(command, "channels_installed", lambda: False)
    assert command.main(["--quick", "--only", "group_send", "--frameworks", "channels"]) == 0
    out = capsys.readouterr().out
    assert "Django Channels is not installed" in out
    assert "Targets:" in out


def test_channels_redis_missing_is_skipped_with_a_note(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(command, "channels_installed", lambda: True)
    monkeypatch.setattr(redis_figures, "channels_redis_installed", lambda: False)
    monkeypatch.setattr(redis_figures, "redis_server", lambda: ("7.0", True))
    assert command.main(["--quick", "--only", REDIS, "--frameworks", "channels"]) == 0
    out = capsys.readouterr().out
    assert out.count("channels_redis is not installed") == 2  # once, and again at the end
    assert "[NOT MEASURED] redis p2p" in out


def test_redis_missing_is_skipped_with_a_note(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(redis_figures, "redis_server", lambda: ("Redis is not there", False))
    assert command.main(["--quick", "--only", REDIS, "--frameworks", "raw,channelworks"]) == 0
    out = capsys.readouterr().out
    assert "the Redis figures are skipped: Redis is not there" in out
    assert "[NOT MEASURED] redis fan-out" in out
