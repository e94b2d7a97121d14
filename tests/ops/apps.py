"""The application the multi-process tests serve, one uvicorn process each.

``/metrics`` is public (``MetricsApp(public=True)``); ``/echo/`` is the echo consumer of
test_metrics (group ``room``). The layer is Redis under ``OPS_TEST_PREFIX`` when that is set
(the processes then see each other), else one in memory per process.
"""

from __future__ import annotations

import os

from django.urls import path

from channelworks.layers import channel_layers
from channelworks.metrics import MetricsApp
from channelworks.routing import ProtocolTypeRouter, URLRouter
from tests.layers.backends import REDIS_URL
from tests.ops.test_metrics import Echo

PREFIX = os.environ.get("OPS_TEST_PREFIX")
channel_layers.configure(
    {
        "default": {
            "BACKEND": "channelworks.layers.redis.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": PREFIX},
        }
    }
    if PREFIX
    else {"default": {"BACKEND": "channelworks.layers.InMemoryChannelLayer"}}
)

application = ProtocolTypeRouter(
    {
        "http": MetricsApp(public=True),
        "websocket": URLRouter([path("echo/", Echo.as_asgi(), name="echo")]),
    }
)
