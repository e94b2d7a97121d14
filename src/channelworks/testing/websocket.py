"""``WebsocketCommunicator``: open, talk to and close a WebSocket application in a test."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from channelworks.testing.communicator import ApplicationCommunicator, connection_scope
from channelworks.types import ASGIApp, Message


class WebsocketCommunicator(ApplicationCommunicator):
    """A WebSocket client for one application, speaking ASGI directly (no server, no socket).

    Call ``connect()`` first; its result says whether the application accepted.
    """

    def __init__(
        self,
        application: ASGIApp,
        path: str,
        headers: Iterable[tuple[bytes, bytes]] | None = None,
        subprotocols: Iterable[str] | None = None,
        spec_version: str = "2.4",
    ) -> None:
        if not isinstance(path, str):
            raise TypeError(f"Expected str, got {type(path)}")
        scope = connection_scope("websocket", path, headers, subprotocols=list(subprotocols or []))
        scope["asgi"]["spec_version"] = spec_version
        super().__init__(application, scope)
        self.response_headers: list[tuple[bytes, bytes]] | None = None

    async def connect(self, timeout: float = 1) -> tuple[bool, str | int | None]:
        """Open the socket: ``(True, subprotocol)`` if accepted, ``(False, close_code)`` if not."""
        await self.send_input({"type": "websocket.connect"})
        response = await self.receive_output(timeout)
        if response["type"] == "websocket.close":
            return False, response.get("code", 1000)
        if response["type"] != "websocket.accept":
            raise AssertionError(f"Expected websocket.accept or close, got {response!r}")
        self.response_headers = response.get("headers")
        return True, response.get("subprotocol")

    async def send_to(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Send one frame, text or binary."""
        if (text_data is None) == (bytes_data is None):
            raise ValueError("send_to() needs exactly one of text_data and bytes_data")
        if text_data is not None:
            await self.send_input({"type": "websocket.receive", "text": text_data})
        else:
            await self.send_input({"type": "websocket.receive", "bytes": bytes_data})

    async def send_json_to(self, data: Any) -> None:
        await self.send_to(text_data=json.dumps(data))

    async def receive_from(self, timeout: float = 1) -> str | bytes:
        """The next frame's text or bytes.

        Raises ``AssertionError`` if the application sent something else (a close, say), with
        Channels' wording: ``Expected type 'websocket.send', but was 'websocket.close'``.
        """
        response = await self.receive_output(timeout)
        return self._frame(response)

    async def receive_json_from(self, timeout: float = 1) -> Any:
        payload = await self.receive_from(timeout)
        if not isinstance(payload, str):
            raise AssertionError(f"JSON data is not a text frame, it is {type(payload)}")
        return json.loads(payload)

    async def disconnect(self, code: int = 1000, timeout: float = 1) -> None:
        """Close from the client side and wait for the application to end."""
        await self.send_input({"type": "websocket.disconnect", "code": code})
        await self.wait(timeout)

    @staticmethod
    def _frame(response: Message) -> str | bytes:
        if response["type"] != "websocket.send":
            raise AssertionError(f"Expected type 'websocket.send', but was '{response['type']}'")
        payload: str | bytes | None = response.get("text")
        if payload is None:
            payload = response["bytes"]
        return payload


__all__ = ["WebsocketCommunicator"]
