"""``ASGI_APPLICATION`` of the command tests' project: HTTP, WebSocket and a worker channel."""

from __future__ import annotations

from django.core.asgi import get_asgi_application

from channelworks.routing import ChannelNameRouter, ProtocolTypeRouter, URLRouter, path
from tests.commands.project.consumers import Echo, Thumbnails

application = ProtocolTypeRouter(
    {
        "http": get_asgi_application(),
        "websocket": URLRouter([path("ws/echo/", Echo.as_asgi())]),
        "channel": ChannelNameRouter({"thumbnail-generate": Thumbnails.as_asgi()}),
    }
)
