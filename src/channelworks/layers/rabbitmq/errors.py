"""Errors of the RabbitMQ layer (see channelworks.exceptions for the whole tree).

``ForeignChannel`` and ``LayerClosed`` are the backend-neutral errors, re-exported here.
"""

from __future__ import annotations

from channelworks.exceptions import (
    ChannelLayerError,
    ForeignChannel,
    LayerClosed,
    LayerUnavailable,
)


class RabbitMQUnavailable(LayerUnavailable):
    """RabbitMQ could not be reached within the layer's ``retry_timeout``.

    Nothing was sent, or (if the connection broke before the broker confirmed) the outcome is
    unknown. The layer counts it in ``stats.unavailable`` and logs it.
    """

    server = "RabbitMQ"


class LoopBlocked(ChannelLayerError, RuntimeError):
    """A call made on another event loop than the layer's home loop was not started there
    within ``patience`` seconds: the home loop is blocked, often by the thread that waits for
    this call (a deadlock). Nothing of the call was done.

    A ``RuntimeError``, as channels_rabbitmq raises for a call from any other loop; its text
    starts with channels_rabbitmq's words, which code written for it may look for.
    """

    def __init__(self, operation: str, target: str, patience: float) -> None:
        self.operation = operation
        self.target = target
        super().__init__(
            "The caller tried using channels_rabbitmq on a different event loop than the "
            f"RabbitMQ layer's, and that loop did not start {operation} {target!r} within "
            f"{patience:g} s (is it blocked, waiting for this thread?); nothing was done"
        )


__all__ = ["ForeignChannel", "LayerClosed", "LoopBlocked", "RabbitMQUnavailable"]
