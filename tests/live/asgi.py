"""The application the live server tests serve: Django for HTTP, consumers for WebSocket."""

from __future__ import annotations

from django.core.asgi import get_asgi_application

from channelworks.routing import ProtocolTypeRouter, URLRouter, path
from tests.live.consumers import Echo, Notes, SyncNotes

application = ProtocolTypeRouter(
    {
        "http": get_asgi_application(),
        "websocket": URLRouter(
            [
                path("ws/echo/", Echo.as_asgi()),
                path("ws/notes/", Notes.as_asgi()),
                path("ws/sync-notes/", SyncNotes.as_asgi()),
            ]
        ),
    }
)
