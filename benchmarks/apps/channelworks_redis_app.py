"""channelworks_app's consumers and routes with ``RedisChannelLayer`` instead of in-memory.

The room's ``group_send`` delivers to this process's members in memory (one in-memory group
send) and costs one Redis round trip to reach other processes (none here, but the script runs).
"""

from __future__ import annotations

from benchmarks.apps.channelworks_app import application
from benchmarks.apps.redis_settings import layer_config
from channelworks.layers import channel_layers

# channelworks_app configured the in-memory layer at import; no layer has been built yet.
channel_layers.configure(layer_config("channelworks.layers.redis.RedisChannelLayer", "cw"))

__all__ = ["application"]
