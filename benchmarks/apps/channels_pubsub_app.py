"""channels_app's consumers and routes with channels_redis' ``RedisPubSubChannelLayer``.

The settings are made here, before channels_app is imported (it keeps settings that exist).
"""

from __future__ import annotations

import importlib
from typing import Any

from benchmarks.apps.redis_settings import configure_channels

configure_channels("channels_redis.pubsub.RedisPubSubChannelLayer", "channels-pubsub")

application: Any = importlib.import_module("benchmarks.apps.channels_app").application
