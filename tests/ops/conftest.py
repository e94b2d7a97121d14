"""Every test here starts with a fresh observer (no connections, zero totals) and exporter."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from channelworks.metrics import exporter as exporter_module
from channelworks.ops import connections
from channelworks.ops.connections import Observer


@pytest.fixture(autouse=True)
def observer(monkeypatch: pytest.MonkeyPatch) -> Iterator[Observer]:
    fresh = Observer()
    monkeypatch.setattr(connections, "_shared", fresh)
    monkeypatch.setattr(exporter_module, "_exporter", None)
    connections.configure(True)
    yield fresh
    connections.configure(None)
