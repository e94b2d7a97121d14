"""The application daphne and hypercorn serve in the smoke tests (run in their own process).

Importing it configures the in-memory channel layer for that process.
"""

from __future__ import annotations

from django.urls import path

from channelworks.layers import channel_layers
from channelworks.routing import ProtocolTypeRouter, URLRouter
from tests.server.apps.consumers import AsyncEcho, Chat, Hello

channel_layers.configure({"default": {"BACKEND": "channelworks.layers.InMemoryChannelLayer"}})

application = ProtocolTypeRouter(
    {
        "websocket": URLRouter(
            [
                path("ws/echo/", AsyncEcho.as_asgi()),
                path("ws/chat/", Chat.as_asgi()),
            ]
        ),
        "http": URLRouter([path("hello/", Hello.as_asgi())]),
    }
)
