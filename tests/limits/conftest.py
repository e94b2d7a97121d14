"""Every test here starts with the default limits, zeroed counters and a fresh log."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from channelworks import limits
from channelworks.limits.logs import limit_log


@pytest.fixture(autouse=True)
def _fresh_limits() -> Iterator[None]:
    limits.configure(None)
    limits.stats.reset()
    limit_log._keys.clear()  # every test sees its first line of each reason logged
    limits.connections.floods.clear()
    yield
    limits.configure(None)
