"""The layer every contract module builds: ``make_layer``, over every backend."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from channelworks.layers import BaseChannelLayer
from tests.layers.backends import BACKENDS

MakeLayer = Callable[..., BaseChannelLayer]


@pytest.fixture(params=sorted(BACKENDS))
async def make_layer(request: pytest.FixtureRequest) -> AsyncIterator[MakeLayer]:
    """Build layers of one backend (``make.backend``) with given options; flush and close
    them afterwards."""
    made: list[BaseChannelLayer] = []

    def make(**options: Any) -> BaseChannelLayer:
        layer = BACKENDS[request.param](**options)
        made.append(layer)
        return layer

    make.backend = request.param  # type: ignore[attr-defined]
    yield make
    for layer in made:
        await layer.flush()
        await layer.close()
