"""The shared contract suite again, on the Redis paths the default factory does not take.

- ``inbox``: sends to the layer's own channels go through Redis and the inbox reader
  (``deliver_locally=False``) instead of straight into memory;
- ``sharded``: two shards (two databases of the suite's server), so ``group_send`` takes
  the two-round-trip path and keys spread over both.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from channelworks.layers import BaseChannelLayer
from channelworks.layers.redis import RedisChannelLayer
from tests.layers import test_contract
from tests.layers.backends import REDIS_URL, redis_reachable, require_service

pytestmark = pytest.mark.services

MakeLayer = Callable[..., BaseChannelLayer]

PATHS: dict[str, dict[str, Any]] = {
    "inbox": {"hosts": [REDIS_URL], "deliver_locally": False},
    "sharded": {"hosts": [REDIS_URL.rsplit("/", 1)[0] + "/0", REDIS_URL.rsplit("/", 1)[0] + "/1"]},
}


@pytest.fixture(params=sorted(PATHS))
async def make_layer(request: pytest.FixtureRequest) -> AsyncIterator[MakeLayer]:
    require_service("Redis", redis_reachable())
    made: list[BaseChannelLayer] = []

    def make(**options: Any) -> BaseChannelLayer:
        options = PATHS[request.param] | {"prefix": f"test-{secrets.token_hex(6)}"} | options
        layer = RedisChannelLayer(**options)
        made.append(layer)
        return layer

    yield make
    for layer in made:
        await layer.flush()
        await layer.close()


@pytest.fixture
def layer(make_layer: MakeLayer) -> BaseChannelLayer:
    return make_layer()


# Every test of the contract module, collected here again with the fixtures above.
globals().update(
    {name: test for name, test in vars(test_contract).items() if name.startswith("test_")}
)
