"""Errors of the RabbitMQ layer (see channelworks.exceptions for the whole tree).

``ForeignChannel`` and ``LayerClosed`` are the backend-neutral errors, re-exported here.
"""

from __future__ import annotations

from channelworks.exceptions import ForeignChannel, LayerClosed, LayerUnavailable


class RabbitMQUnavailable(LayerUnavailable):
    """RabbitMQ could not be reached within the layer's ``retry_timeout``.

    Nothing was sent, or (if the connection broke before the broker confirmed) the outcome is
    unknown. The layer counts it in ``stats.unavailable`` and logs it.
    """

    server = "RabbitMQ"


__all__ = ["ForeignChannel", "LayerClosed", "RabbitMQUnavailable"]
