"""Every test here starts with the default limits and zeroed counters."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from channelworks import limits


@pytest.fixture(autouse=True)
def _fresh_limits() -> Iterator[None]:
    limits.configure(None)
    limits.stats.reset()
    yield
    limits.configure(None)
