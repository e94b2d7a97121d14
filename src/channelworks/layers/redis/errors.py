"""Errors of the Redis layer (see channelworks.exceptions for the whole tree).

``ForeignChannel`` and ``LayerClosed`` are the backend-neutral errors, re-exported here so
code written against the first Redis release keeps importing them from this module.
"""

from __future__ import annotations

from channelworks.exceptions import ForeignChannel, LayerClosed, LayerUnavailable


class RedisUnavailable(LayerUnavailable):
    """Redis did not answer within the layer's ``retry_timeout``.

    The layer counts it in ``stats.redis_errors`` and logs it.
    """

    server = "Redis"


__all__ = ["ForeignChannel", "LayerClosed", "RedisUnavailable"]
