"""Every test here starts with a fresh observer (no connections, zero totals), exporter and
topic counts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from channelworks.metrics import exporter as exporter_module
from channelworks.ops import connections
from channelworks.ops.connections import Observer
from channelworks.ops.topics import counts


@pytest.fixture(autouse=True)
def observer(monkeypatch: pytest.MonkeyPatch) -> Iterator[Observer]:
    fresh = Observer()
    monkeypatch.setattr(connections, "_shared", fresh)
    monkeypatch.setattr(exporter_module, "_exporter", None)
    for name in ("joins", "leaves", "crashes"):  # topics counted by earlier tests elsewhere
        monkeypatch.setattr(counts, name, {})
    connections.configure(True)
    yield fresh
    connections.configure(None)
