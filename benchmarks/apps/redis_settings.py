"""Where the Redis apps find Redis, and their key prefix (``CHANNELWORKS_BENCH_REDIS_PREFIX``).

The benchmark sets the variable to a prefix of its own for each run before it starts the
servers, and deletes the prefix's keys afterwards. Each app adds its own suffix, so the
contenders never share keys (channelworks and channels_redis could not read each other's
anyway).
"""

from __future__ import annotations

import os
from typing import Any

REDIS_HOST = "127.0.0.1"
REDIS_PORT = 6379
REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"
PREFIX_VARIABLE = "CHANNELWORKS_BENCH_REDIS_PREFIX"


def layer_config(backend: str, flavour: str, host: object = REDIS_URL) -> dict[str, Any]:
    """A ``CHANNEL_LAYERS`` setting with ``backend`` on Redis, defaults otherwise."""
    prefix = f"{os.environ.get(PREFIX_VARIABLE, 'cwbench-by-hand')}-{flavour}"
    return {"default": {"BACKEND": backend, "CONFIG": {"hosts": [host], "prefix": prefix}}}


def configure_channels(backend: str, flavour: str, host: object = REDIS_URL) -> None:
    """Django settings for Django Channels with the channels_redis layer ``backend``."""
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DEBUG=False,
            INSTALLED_APPS=[],
            DATABASES={},
            CHANNEL_LAYERS=layer_config(backend, flavour, host),
        )
        django.setup()
