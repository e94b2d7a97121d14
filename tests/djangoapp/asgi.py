"""The test project's ASGI application (``ASGI_APPLICATION``)."""

from __future__ import annotations

from django.core.asgi import get_asgi_application

from channelworks.routing import ProtocolTypeRouter

application = ProtocolTypeRouter({"http": get_asgi_application()})
