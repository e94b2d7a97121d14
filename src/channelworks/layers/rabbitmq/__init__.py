"""The RabbitMQ channel layer: ``RabbitMQChannelLayer`` (see docs/rabbitmq.md).

Configure it as channels_rabbitmq's layer::

    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channelworks.layers.rabbitmq.RabbitMQChannelLayer",
            "CONFIG": {"host": "amqp://guest:guest@127.0.0.1:5672/"},
        },
    }

``RabbitmqChannelLayer`` is the same class under channels_rabbitmq's spelling.
"""

from channelworks.layers.rabbitmq.errors import (
    ForeignChannel,
    LayerClosed,
    LoopBlocked,
    RabbitMQUnavailable,
)
from channelworks.layers.rabbitmq.layer import RabbitMQChannelLayer
from channelworks.layers.rabbitmq.stats import RabbitMQLayerStats

RabbitmqChannelLayer = RabbitMQChannelLayer

__all__ = [
    "ForeignChannel",
    "LayerClosed",
    "LoopBlocked",
    "RabbitMQChannelLayer",
    "RabbitMQLayerStats",
    "RabbitMQUnavailable",
    "RabbitmqChannelLayer",
]
