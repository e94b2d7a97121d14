"""Errors of the Redis layer (all are ``ChannelLayerError``s, see channelworks.exceptions).

::

    ChannelLayerError
    ├── RedisUnavailable   Redis could not be reached within ``retry_timeout``; the operation
    │                      did not happen (or, if the link broke mid-reply, may have)
    ├── ForeignChannel     ``receive`` on a process-local channel of another process
    └── LayerClosed        a ``receive`` on a normal channel was waiting when ``close()`` ran
"""

from __future__ import annotations

from channelworks.exceptions import ChannelLayerError


class RedisUnavailable(ChannelLayerError):
    """Redis did not answer within the layer's ``retry_timeout``.

    ``operation`` names what failed (``"send"``, ``"group_send"``…), ``target`` the channel or
    group, ``host`` the shard. The layer counts it in ``stats.redis_errors`` and logs it; the
    caller decides whether to try again later or give up on the message.
    """

    def __init__(self, operation: str, target: str, host: str, reason: str) -> None:
        self.operation = operation
        self.target = target
        self.host = host
        super().__init__(f"{operation} {target!r}: Redis at {host} is unavailable ({reason})")


class ForeignChannel(ChannelLayerError, ValueError):
    """A process-local channel can only be received from by the layer that made it."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        super().__init__(
            f"Channel {channel!r} belongs to another process: only the layer whose "
            "new_channel() made it can receive from it"
        )


class LayerClosed(ChannelLayerError):
    """``close()`` ended a ``receive`` that was waiting on a normal channel (nothing taken)."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        super().__init__(f"receive({channel!r}) ended: the layer was closed")


__all__ = ["ForeignChannel", "LayerClosed", "RedisUnavailable"]
