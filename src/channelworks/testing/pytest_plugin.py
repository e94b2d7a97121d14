"""Pytest fixtures for projects that test consumers (loaded automatically as a pytest plugin).

``channel_layer`` installs a fresh ``InMemoryChannelLayer`` as the default layer for the test
and restores what was there after it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from channelworks import DEFAULT_CHANNEL_LAYER
from channelworks.layers import InMemoryChannelLayer, channel_layers


@pytest.fixture
def channel_layer() -> Iterator[InMemoryChannelLayer]:
    """A fresh in-memory layer, installed as the default layer while the test runs."""
    layer = InMemoryChannelLayer()
    previous = channel_layers.set(DEFAULT_CHANNEL_LAYER, layer)
    try:
        yield layer
    finally:
        if previous is None:
            channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)
        else:
            channel_layers.set(DEFAULT_CHANNEL_LAYER, previous)
