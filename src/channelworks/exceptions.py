"""Every error channelworks raises, under one root.

The tree::

    ChannelworksError
    ├── StopConsumer                  a consumer is done; the runtime ends it quietly
    ├── AcceptConnection              raised in ``connect()`` to accept the socket
    ├── DenyConnection                raised in ``connect()`` to refuse the socket
    ├── CloseConnection               raised in a handler to close the socket with a code
    │   ├── InvalidFrame              a frame the consumer cannot decode (close code 1007)
    │   ├── RateLimited               frames over the connection's inbound limits (1008)
    │   └── SlowClient                the client does not take its frames in time (1013)
    ├── RequestAborted                the HTTP client went away mid-request
    ├── RequestTimeout                reading an HTTP body took too long
    ├── UnhandledMessageType          no handler for a message ``type`` (also a ValueError)
    ├── NoRouteFound                  no route matches the scope (also a ValueError)
    ├── ChannelLayerError
    │   ├── ChannelFull               ``send`` to a channel at capacity
    │   ├── InvalidChannelName        bad channel or group name (also TypeError, ValueError)
    │   ├── InvalidMessage            a message that is not a dict with a valid ``type``
    │   ├── InvalidChannelLayerError  the ``CHANNEL_LAYERS`` setting is unusable
    │   ├── LayerUnavailable          the layer's server could not be reached (Redis, RabbitMQ)
    │   ├── LayerClosed               ``close()`` ended a ``receive`` (also a StopConsumer)
    │   ├── Unrecoverable             ``history()`` cannot continue from a position
    │   ├── InvalidPresence           a bad presence key or meta, or a channel tracked twice
    │   └── ForeignChannel            ``receive`` on another process's ``!`` channel
    └── MessageTooLarge               a frame or message over the configured limit

Errors carry the value that caused them (``.name``, ``.channel``, ``.type``) so callers need not
parse messages. Those that Django Channels raised as ``ValueError``/``TypeError`` keep those
bases, so existing ``except`` clauses keep working.
"""

from __future__ import annotations


class ChannelworksError(Exception):
    """Root of every channelworks exception."""


class StopConsumer(ChannelworksError):
    """Raise inside a handler to end the consumer; the runtime exits without error."""


class AcceptConnection(ChannelworksError):
    """Raise inside ``connect()`` to accept the WebSocket connection."""


class DenyConnection(ChannelworksError):
    """Raise inside ``connect()`` to refuse the WebSocket connection (HTTP 403 at the server)."""


class CloseConnection(ChannelworksError):
    """Raise inside a WebSocket handler to close the socket with ``code`` and ``reason``.

    The consumer logs it at INFO (it is the client's doing, not a crash) and stops.
    """

    code: int = 1000

    def __init__(self, code: int | None = None, reason: str = "") -> None:
        if code is not None:
            self.code = code
        self.reason = reason
        super().__init__(
            f"Closing WebSocket with code {self.code}" + (f": {reason}" if reason else "")
        )


class InvalidFrame(CloseConnection):
    """A WebSocket frame the consumer cannot decode, such as bad JSON; closes with 1007."""

    code = 1007


class RateLimited(CloseConnection):
    """The client sent faster than its inbound limits allow (docs/limits.md); closes with
    1008 (policy violation)."""

    code = 1008


class SlowClient(CloseConnection):
    """The client did not take its frames in time (docs/limits.md); closes with 1013 (try
    again later). Raised by ``send`` on a connection found too slow."""

    code = 1013


class RequestAborted(ChannelworksError):
    """The HTTP client disconnected before the request body was complete."""


class RequestTimeout(RequestAborted):
    """The HTTP request body did not arrive in time."""


class MessageTooLarge(ChannelworksError):
    """A message or frame is over the configured size limit."""


class UnhandledMessageType(ChannelworksError, ValueError):
    """A message arrived whose ``type`` has no handler on the consumer."""

    def __init__(self, message_type: object, consumer: str, reason: str = "") -> None:
        self.type = message_type
        self.consumer = consumer
        detail = f" ({reason})" if reason else ""
        super().__init__(f"No handler for message type {message_type!r} on {consumer}{detail}")


class NoRouteFound(ChannelworksError, ValueError):
    """No route matched the connection's scope."""

    def __init__(self, what: str, value: object) -> None:
        self.what = what
        self.value = value
        super().__init__(f"No route found for {what} {value!r}")


class ChannelLayerError(ChannelworksError):
    """Root of channel layer errors."""


class ChannelFull(ChannelLayerError):
    """The channel is at capacity; the message was not sent."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        super().__init__(f"Channel {channel!r} is full")


class InvalidChannelName(ChannelLayerError, TypeError, ValueError):
    """A channel or group name breaks the naming rules (see docs/channel-layer-spec.md)."""

    def __init__(self, kind: str, name: object, rule: str) -> None:
        self.kind = kind
        self.name = name
        super().__init__(f"Invalid {kind} name {name!r}: {rule}")


class InvalidMessage(ChannelLayerError, TypeError, ValueError):
    """A layer message that is not a dict with a valid string ``type``."""


class InvalidChannelLayerError(ChannelLayerError, ValueError):
    """The ``CHANNEL_LAYERS`` configuration names an unusable backend or alias."""


class LayerUnavailable(ChannelLayerError):
    """The layer's server did not answer in time; the operation did not happen.

    (If the link broke mid-reply it may have.) ``operation`` names what failed (``"send"``,
    ``"group_send"``…), ``target`` the channel or group, ``host`` the server. Backends count
    it and log it; the caller decides whether to try again later or give up on the message.
    """

    #: what the server is called in the message ("Redis", "RabbitMQ")
    server = "the channel layer server"

    def __init__(self, operation: str, target: str, host: str, reason: str) -> None:
        self.operation = operation
        self.target = target
        self.host = host
        super().__init__(
            f"{operation} {target!r}: {self.server} at {host} is unavailable ({reason})"
        )


class LayerClosed(ChannelLayerError, StopConsumer):
    """``close()`` ended a ``receive`` that was waiting (nothing was taken), or a call came
    after ``close()`` on a layer that stays closed (RabbitMQ, as channels_rabbitmq).

    Also a ``StopConsumer``, which channels_rabbitmq raises there: a consumer whose layer
    closes under it ends quietly.
    """

    def __init__(self, channel: str, operation: str = "receive") -> None:
        self.channel = channel
        self.operation = operation
        if operation == "receive":
            text = f"receive({channel!r}) ended: the layer was closed"
        else:
            text = f"{operation}({channel!r}) refused: the layer is closed"
        super().__init__(text)


class ForeignChannel(ChannelLayerError, ValueError, AssertionError):
    """A process-local channel can only be received from by the layer that made it.

    Also an ``AssertionError``, which channels_redis raises for it."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        super().__init__(
            f"Channel {channel!r} belongs to another process: only the layer whose "
            "new_channel() made it can receive from it"
        )


class InvalidPresence(ChannelLayerError, ValueError):
    """A presence call the layer refuses: a key that is not a short str, a meta that is not
    a small dict msgpack carries (or sets ``phx_ref``/``joined_at`` itself), a channel
    tracked twice in one group or updated without being tracked (docs/presence.md)."""


class Unrecoverable(ChannelLayerError):
    """``history(group, since=...)`` cannot return everything after ``since``: the group's
    log was lost (another epoch), the messages after it left the log, or more than ``limit``
    were missed. Nothing is returned, never a partial list: tell the client
    ``recovered: false`` so it reloads its state. ``.group``, ``.since`` and ``.position``
    (the log's current position) are the values involved, ``.reason`` says which case."""

    def __init__(self, group: str, since: object, position: object, reason: str) -> None:
        self.group = group
        self.since = since
        self.position = position
        self.reason = reason
        super().__init__(
            f"history of {group!r} cannot resume from {since!r} (now at {position!r}): {reason}"
        )


__all__ = [
    "AcceptConnection",
    "ChannelFull",
    "ChannelLayerError",
    "ChannelworksError",
    "CloseConnection",
    "DenyConnection",
    "ForeignChannel",
    "InvalidChannelLayerError",
    "InvalidChannelName",
    "InvalidFrame",
    "InvalidMessage",
    "InvalidPresence",
    "LayerClosed",
    "LayerUnavailable",
    "MessageTooLarge",
    "NoRouteFound",
    "RateLimited",
    "RequestAborted",
    "RequestTimeout",
    "SlowClient",
    "StopConsumer",
    "UnhandledMessageType",
    "Unrecoverable",
]
