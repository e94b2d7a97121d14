"""Suite-wide fixtures: every test starts with no channel layer configured."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from channelworks.layers import channel_layers


@pytest.fixture(autouse=True)
def _no_configured_layers() -> Iterator[None]:
    channel_layers.configure({})
    yield
    channel_layers.configure({})
