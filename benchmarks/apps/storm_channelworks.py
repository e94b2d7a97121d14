"""channelworks behind ``AuthMiddlewareStack`` with database sessions (figure 13).

``/who`` accepts a socket whose session holds a logged-in user and closes any other.
"""

from __future__ import annotations

from benchmarks.apps.storm_settings import configure

configure()

from django.urls import path  # noqa: E402 - after the settings

from channelworks.auth import AuthMiddlewareStack  # noqa: E402
from channelworks.consumers import AsyncWebsocketConsumer  # noqa: E402
from channelworks.layers import channel_layers  # noqa: E402
from channelworks.routing import URLRouter  # noqa: E402

channel_layers.configure({"default": {"BACKEND": "channelworks.layers.InMemoryChannelLayer"}})


class Who(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        if self.scope["user"].is_authenticated:
            await self.accept()
        else:
            await self.close()


application = AuthMiddlewareStack(URLRouter([path("who", Who.as_asgi())]))
