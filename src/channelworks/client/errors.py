"""What the topics client raises.

The tree::

    ClientError
    ├── JoinError        a join was refused (``.reason``), or the topic was closed by the server
    ├── PushError        a push got an error reply (``.response``)
    ├── PushTimeout      no reply within the push's timeout (also a TimeoutError)
    └── Disconnected     the socket closed before the reply came, or for good (``.code``)
"""

from __future__ import annotations

from typing import Any

from channelworks.exceptions import ChannelworksError


class ClientError(ChannelworksError):
    """Root of the topics client's errors."""


class JoinError(ClientError):
    """The server refused the join (``reason``: ``"unauthorized"``, ``"unknown_topic"``...)."""

    def __init__(self, topic: str, reason: str) -> None:
        super().__init__(f"join of {topic!r} refused: {reason}")
        self.topic = topic
        self.reason = reason


class PushError(ClientError):
    """A push's reply had status ``"error"``; ``response`` is its response."""

    def __init__(self, event: str, response: dict[str, Any]) -> None:
        super().__init__(f"{event!r} failed: {response!r:.200}")
        self.event = event
        self.response = response

    @property
    def reason(self) -> Any:
        return self.response.get("reason")


class PushTimeout(ClientError, TimeoutError):
    """No reply within the timeout (the server may have handled the push anyway)."""


class Disconnected(ClientError):
    """The connection closed (``code``) before the answer came, or the socket stopped."""

    def __init__(self, code: int | None, reason: str = "") -> None:
        super().__init__(f"disconnected (code {code}{': ' + reason if reason else ''})")
        self.code = code
        self.reason = reason


__all__ = ["ClientError", "Disconnected", "JoinError", "PushError", "PushTimeout"]
