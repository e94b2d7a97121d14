"""The demo's ASGI application: uvicorn serves ``channelworks.demo.asgi:application``.

- ``http``: Django, behind the static files handler (the demo has no separate web server);
- ``websocket``: the origin check (``origins.py``), then the session and user, then the URL
  routes. Every route is behind the check, so no other site can open a socket with our
  users' cookies;
- ``channel``: the worker's consumers by channel name;
- ``lifespan``: starts and stops that worker with the server.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "channelworks.demo.settings")
django_asgi_app = get_asgi_application()  # sets Django up before the imports below

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from channelworks.auth import AuthMiddlewareStack  # noqa: E402
from channelworks.demo.lifespan import WorkerLifespan  # noqa: E402
from channelworks.demo.origins import SiteOriginValidator  # noqa: E402
from channelworks.demo.routing import channel_routes, websocket_urlpatterns  # noqa: E402
from channelworks.routing import ChannelNameRouter, ProtocolTypeRouter, URLRouter  # noqa: E402

workers = ChannelNameRouter(channel_routes)

application = ProtocolTypeRouter(
    {
        "http": ASGIStaticFilesHandler(django_asgi_app),
        "websocket": SiteOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
        "channel": workers,
        "lifespan": WorkerLifespan(workers, channel_routes),
    }
)
