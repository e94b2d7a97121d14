"""``AsyncHttpConsumer``: plain HTTP responses, long-polling and streamed (SSE) responses.

Lifecycle: the request body is gathered, then ``handle(body)`` runs. After ``handle`` (or any
handler) returns, the consumer ends if the response is complete, or if ``handle`` started no
response at all (as in Channels). A response that was started and not finished keeps the
consumer alive, receiving channel layer messages, until a handler finishes it or the client
goes away: that is how a long-poll or an event stream gets its data. ``disconnect()`` runs
exactly once at the end. An exception in a handler ends the exchange (``disconnect()`` runs)
and then leaves the application, as in Channels: the server answers 500 if no response was
started, and logs it; a test communicator raises it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from channelworks.consumers.base import AsyncConsumer
from channelworks.consumers.handlers import framework_class
from channelworks.exceptions import StopConsumer
from channelworks.types import Message

logger = logging.getLogger("channelworks.consumers")

#: response headers: ``(name, value)`` pairs, or a mapping of names to values (as Channels takes)
Headers = Iterable[tuple[bytes | str, bytes | str]] | Mapping[bytes | str, bytes | str]


@framework_class("http_request", "http_disconnect")
class AsyncHttpConsumer(AsyncConsumer):
    """Override ``handle(body)`` and answer with ``send_response`` or headers + body parts."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.start_connection()

    def start_connection(self) -> None:
        super().start_connection()
        self.body: list[bytes] = []
        self.response_started = False
        self.response_finished = False
        self._finished = False

    async def handle(self, body: bytes) -> None:
        """Answer the request; must be overridden."""
        raise NotImplementedError(f"{type(self).__qualname__} must implement handle(body)")

    async def disconnect(self) -> None:
        """Called once when the exchange ends, whichever side ended it."""

    async def send_headers(self, *, status: int = 200, headers: Headers | None = None) -> None:
        """Start the response; the server sends it with the first body part.

        ``headers`` are ``(name, value)`` pairs or a dict; names and values are bytes or
        latin-1 strings.
        """
        pairs = headers.items() if isinstance(headers, Mapping) else headers or ()
        await self.send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(_bytes(k), _bytes(v)) for k, v in pairs],
            }
        )
        self.response_started = True

    async def send_body(self, body: bytes, *, more_body: bool = False) -> None:
        """Send a part of the body; ``more_body=True`` keeps the response open for more.

        The last part completes the response; the consumer ends once the current handler
        returns, so code after this call still runs.
        """
        if not self.response_started:
            raise RuntimeError("send_headers() must come before send_body()")
        if self.response_finished:
            raise RuntimeError("the response is already complete")
        await self.send({"type": "http.response.body", "body": body, "more_body": more_body})
        self.response_finished = not more_body

    async def send_response(
        self, status: int, body: bytes, *, headers: Headers | None = None
    ) -> None:
        """Send a whole response at once."""
        await self.send_headers(status=status, headers=headers)
        await self.send_body(body)

    async def http_request(self, message: Message) -> None:
        self.body.append(message.get("body", b""))
        if message.get("more_body"):
            return
        body, self.body = b"".join(self.body), []
        try:
            await self.handle(body)
        except StopConsumer:
            await self._finish()
        if not self.response_started:
            await self._finish()

    async def http_disconnect(self, message: Message) -> None:
        await self._finish()

    async def dispatch(self, message: Message) -> None:
        await super().dispatch(message)
        if self.response_finished:
            await self._finish()

    async def handle_exception(self, exc: Exception, message: Message) -> None:
        """End the exchange (``disconnect()`` once), then let ``exc`` leave the application.

        The server answers 500 if no response was started (or drops the connection if one
        was) and logs the error with its traceback.
        """
        with contextlib.suppress(StopConsumer):
            await self._finish()
        raise exc

    _finished = False

    async def _finish(self) -> None:
        """End the exchange: ``disconnect()`` once, then stop the consumer."""
        if not self._finished:
            self._finished = True
            try:
                await self.disconnect()
            except Exception:
                logger.exception("%s.disconnect() failed", type(self).__qualname__)
        raise StopConsumer


def _bytes(value: bytes | str) -> bytes:
    return value.encode("latin-1") if isinstance(value, str) else value


__all__ = ["AsyncHttpConsumer"]
