"""An ASGI application for the shutdown tests: run it under uvicorn in a process of its own.

``CHANNELWORKS_TEST_LAYER`` is ``redis`` or ``rabbitmq``, ``CHANNELWORKS_TEST_URL`` its
server and ``CHANNELWORKS_TEST_PREFIX`` the prefix. A WebSocket at ``/ws/room/`` joins group
``room`` and is told its channel name; ``lifespan`` is left to ``ProtocolTypeRouter``.
"""

from __future__ import annotations

import os

from channelworks.consumers import AsyncWebsocketConsumer
from channelworks.layers import channel_layers
from channelworks.routing import ProtocolTypeRouter, URLRouter, path

BACKENDS = {
    "redis": ("channelworks.layers.redis.RedisChannelLayer", "hosts"),
    "rabbitmq": ("channelworks.layers.rabbitmq.RabbitMQChannelLayer", "host"),
}

backend, option = BACKENDS[os.environ["CHANNELWORKS_TEST_LAYER"]]
url = os.environ["CHANNELWORKS_TEST_URL"]
channel_layers.configure(
    {
        "default": {
            "BACKEND": backend,
            "CONFIG": {
                option: [url] if option == "hosts" else url,
                "prefix": os.environ["CHANNELWORKS_TEST_PREFIX"],
            },
        }
    }
)


class Room(AsyncWebsocketConsumer):
    groups = ["room"]

    async def connect(self) -> None:
        await self.accept()
        await self.send(text_data=self.channel_name)


application = ProtocolTypeRouter({"websocket": URLRouter([path("ws/room/", Room.as_asgi())])})
