"""Channel layers: the contract, the registry and the in-memory backend.

``get_channel_layer()`` returns the layer configured in ``CHANNEL_LAYERS``; the Redis and
RabbitMQ backends live in their own modules and are imported only when configured.
"""

from channelworks.exceptions import ChannelFull, InvalidChannelLayerError, InvalidChannelName
from channelworks.layers.base import BaseChannelLayer, LayerStats
from channelworks.layers.memory import InMemoryChannelLayer
from channelworks.layers.registry import ChannelLayerManager, channel_layers, get_channel_layer

__all__ = [
    "BaseChannelLayer",
    "ChannelFull",
    "ChannelLayerManager",
    "InMemoryChannelLayer",
    "InvalidChannelLayerError",
    "InvalidChannelName",
    "LayerStats",
    "channel_layers",
    "get_channel_layer",
]
