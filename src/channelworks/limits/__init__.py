"""Per-connection protection: inbound rate limits, a bound on slow clients, connection caps
and handshake limits, on by default for every WebSocket consumer (docs/limits.md).

``Limits`` holds every option; set a consumer class's ``limits`` (a dict of overrides or a
``Limits``), Django's ``CHANNELWORKS_LIMITS`` (a dict), or call ``configure()`` without Django.
``stats`` counts what the limits did.
"""

from channelworks.limits.config import Limits, Policy, configure, process_limits, resolve
from channelworks.limits.connections import connections
from channelworks.limits.stats import LimitStats, stats

__all__ = [
    "LimitStats",
    "Limits",
    "Policy",
    "configure",
    "connections",
    "process_limits",
    "resolve",
    "stats",
]
