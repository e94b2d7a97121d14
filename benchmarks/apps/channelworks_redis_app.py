"""channelworks_app's consumers and routes with ``RedisChannelLayer`` instead of in-memory.

The room's ``group_send`` goes through Redis (one round trip) and comes back to this process
through its inbox reader, which fans it out to the members locally.
"""

from __future__ import annotations

from benchmarks.apps.channelworks_app import application
from benchmarks.apps.redis_settings import layer_config
from channelworks.layers import channel_layers

# channelworks_app configured the in-memory layer at import; no layer has been built yet.
channel_layers.configure(layer_config("channelworks.layers.redis.RedisChannelLayer", "cw"))

__all__ = ["application"]
