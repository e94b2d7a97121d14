"""The Redis channel layer: ``RedisChannelLayer`` (see docs/redis.md).

Configure it as channels_redis' layer::

    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channelworks.layers.redis.RedisChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:6379/0"]},
        },
    }

``RedisPubSubChannelLayer`` is the same class under channels_redis' other name, so settings
that chose the pub/sub layer run unchanged (on the one design: channelworks does not use
Redis pub/sub).
"""

from channelworks.layers.redis.errors import ForeignChannel, LayerClosed, RedisUnavailable
from channelworks.layers.redis.layer import RedisChannelLayer
from channelworks.layers.redis.stats import RedisLayerStats

RedisPubSubChannelLayer = RedisChannelLayer

__all__ = [
    "ForeignChannel",
    "LayerClosed",
    "RedisChannelLayer",
    "RedisLayerStats",
    "RedisPubSubChannelLayer",
    "RedisUnavailable",
]
