"""The backends the shared layer-contract suite runs against.

Each entry builds a fresh layer from contract options. A backend whose service is missing
skips, unless ``CHANNELWORKS_REQUIRE_SERVICES=1`` (CI), where a missing service fails the run.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

from channelworks.layers import BaseChannelLayer, InMemoryChannelLayer

LayerFactory = Callable[..., BaseChannelLayer]


def require_service(name: str, available: bool) -> None:
    """Skip the test if ``name`` is not reachable, or fail it when services are required."""
    if available:
        return
    if os.environ.get("CHANNELWORKS_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{name} is required (CHANNELWORKS_REQUIRE_SERVICES=1) but not reachable")
    pytest.skip(f"{name} is not reachable")


def memory(**options: Any) -> BaseChannelLayer:
    return InMemoryChannelLayer(**options)


BACKENDS: dict[str, LayerFactory] = {"memory": memory}
