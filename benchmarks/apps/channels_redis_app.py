"""channels_app's consumers and routes with channels_redis' core ``RedisChannelLayer``.

The settings are made here, before channels_app is imported (it keeps settings that exist).

One option differs from the defaults: the redis-py pool may hold 1000 connections. Since
redis-py 8 a pool holds 100 by default, and the core layer takes a connection per concurrent
call: when the client opens 100 sockets at once, their ``group_add`` calls plus the blocking
receive exceed 100, and the connects fail with ``MaxConnectionsError: Too many connections``
(HTTP 500). A project would raise the limit the same way, through a host dict.
"""

from __future__ import annotations

import importlib
from typing import Any

from benchmarks.apps.redis_settings import REDIS_URL, configure_channels

#: the pool size the core layer is given here (see above)
MAX_CONNECTIONS = 1000

configure_channels(
    "channels_redis.core.RedisChannelLayer",
    "channels",
    {"address": REDIS_URL, "max_connections": MAX_CONNECTIONS},
)

application: Any = importlib.import_module("benchmarks.apps.channels_app").application
