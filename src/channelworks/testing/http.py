"""``HttpCommunicator``: send one HTTP request to an application and collect the response."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from channelworks.testing.communicator import ApplicationCommunicator, connection_scope
from channelworks.types import ASGIApp


class HttpCommunicator(ApplicationCommunicator):
    """One request, one response: ``await HttpCommunicator(app, "GET", "/").get_response()``."""

    def __init__(
        self,
        application: ASGIApp,
        method: str,
        path: str,
        body: bytes = b"",
        headers: Iterable[tuple[bytes, bytes]] | None = None,
    ) -> None:
        scope = connection_scope("http", path, headers, method=method.upper())
        super().__init__(application, scope)
        self.body = body
        self.sent_request = False

    async def get_response(self, timeout: float = 1) -> dict[str, Any]:
        """Send the request (once) and return ``{"status", "headers", "body"}``.

        Waits for every body part until ``more_body`` is false.
        """
        if not self.sent_request:
            self.sent_request = True
            await self.send_input({"type": "http.request", "body": self.body})
        start = await self.receive_output(timeout)
        if start["type"] != "http.response.start":
            raise AssertionError(f"Expected http.response.start, got {start!r}")
        response: dict[str, Any] = {
            "status": start["status"],
            "headers": list(start.get("headers", [])),
            "body": b"",
        }
        while True:
            part = await self.receive_output(timeout)
            if part["type"] != "http.response.body":
                raise AssertionError(f"Expected http.response.body, got {part!r}")
            response["body"] += part.get("body", b"")
            if not part.get("more_body", False):
                return response


__all__ = ["HttpCommunicator"]
