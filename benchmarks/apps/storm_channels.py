"""Django Channels behind its ``AuthMiddlewareStack`` with database sessions (figure 13).

The same consumer as ``storm_channelworks``. ``channels`` is imported through ``importlib``
so that this module type-checks without it (it is only in the ``bench`` group).
"""

from __future__ import annotations

import importlib
from typing import Any

from benchmarks.apps.storm_settings import configure

configure({"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}})

from django.urls import path  # noqa: E402 - after the settings

_auth: Any = importlib.import_module("channels.auth")
_routing: Any = importlib.import_module("channels.routing")
_websocket: Any = importlib.import_module("channels.generic.websocket")


class Who(_websocket.AsyncWebsocketConsumer):  # type: ignore[misc]
    async def connect(self) -> None:
        if self.scope["user"].is_authenticated:
            await self.accept()
        else:
            await self.close()


application = _auth.AuthMiddlewareStack(_routing.URLRouter([path("who", Who.as_asgi())]))
