"""How ``websocket_receive`` runs the ``receive`` hook, flavour by flavour (a reviewer's checks
of the fast path that awaits an async ``receive`` without ``call_hook``)."""

from __future__ import annotations

import functools
import threading
from typing import Any
from unittest import mock

import pytest

from channelworks.consumers import (
    AsyncConsumer,
    AsyncJsonWebsocketConsumer,
    AsyncWebsocketConsumer,
    JsonWebsocketConsumer,
    WebsocketConsumer,
)
from channelworks.testing import WebsocketCommunicator


async def frames(consumer: type[AsyncConsumer], *texts: str) -> list[Any]:
    """Send ``texts``; what came back (text frames, or the close code)."""
    communicator = WebsocketCommunicator(consumer.as_asgi(), "/")
    connected, _ = await communicator.connect()
    assert connected
    out: list[Any] = []
    for text in texts:
        await communicator.send_to(text_data=text)
        message = await communicator.receive_output(1)
        if message["type"] == "websocket.close":
            out.append(("closed", message["code"]))
            break
        out.append(message.get("text"))
    else:
        await communicator.disconnect()
    return out


def where() -> str:
    return "thread" if threading.current_thread().name.startswith("channelworks-sync") else "loop"


class SyncRaw(WebsocketConsumer):
    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        self.send(text_data=where())


class SyncJson(JsonWebsocketConsumer):
    def receive_json(self, content: Any) -> None:
        self.send_json([content, where()])


class AsyncJson(AsyncJsonWebsocketConsumer):
    async def receive_json(self, content: Any) -> None:
        await self.send_json([content, where()])


class AsyncOnSync(WebsocketConsumer):
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:  # type: ignore[override]
        await WebsocketConsumer._send(self, text_data=where())


class SyncOnAsync(AsyncWebsocketConsumer):
    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:  # type: ignore[override]
        pass


async def test_flavours() -> None:
    assert await frames(SyncRaw, "a") == ["thread"]
    assert await frames(SyncJson, '"a"') == ['["a", "thread"]']
    assert await frames(AsyncJson, '"a"') == ['["a", "loop"]']
    assert await frames(AsyncOnSync, "a") == ["loop"]
    assert await frames(SyncOnAsync, "a") == [("closed", 1011)]


def sync_wrapper(function: Any) -> Any:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return function(*args, **kwargs)

    return wrapper


class Decorated(AsyncWebsocketConsumer):
    @sync_wrapper
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send(text_data="decorated:" + where())


class Replaced(AsyncWebsocketConsumer):
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send(text_data="first")


class CallableHook:
    def __init__(self) -> None:
        self.__qualname__ = "CallableHook"  # call_hook's await_result reads hook.__qualname__

    async def __call__(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        pass


async def test_decorated_replaced_partial_callable_and_mocks(monkeypatch: Any) -> None:
    assert await frames(Decorated, "a") == ["decorated:loop"]

    async def second(self: Any, text_data: str | None = None, bytes_data: Any = None) -> None:
        await self.send(text_data="second")

    assert await frames(Replaced, "a") == ["first"]
    monkeypatch.setattr(Replaced, "receive", second)
    assert await frames(Replaced, "a") == ["second"]

    async def echo(self: Any, text_data: str | None = None, bytes_data: Any = None) -> None:
        await self.send(text_data="partial")

    class Partial(AsyncWebsocketConsumer):
        async def connect(self) -> None:
            self.receive = functools.partial(echo, self)  # type: ignore[method-assign]
            await self.accept()

    assert await frames(Partial, "a") == ["partial"]

    seen: list[Any] = []

    class Instance(AsyncWebsocketConsumer):
        async def connect(self) -> None:
            hook = CallableHook()
            self.receive = hook  # type: ignore[method-assign]
            seen.append(hook)
            await self.accept()

    communicator = WebsocketCommunicator(Instance.as_asgi(), "/")
    assert (await communicator.connect())[0]
    await communicator.send_to(text_data="a")
    assert await communicator.receive_nothing()
    await communicator.disconnect()

    with mock.patch.object(AsyncWebsocketConsumer, "receive", mock.AsyncMock()) as patched:
        communicator = WebsocketCommunicator(AsyncWebsocketConsumer.as_asgi(), "/")
        assert (await communicator.connect())[0]
        await communicator.send_to(bytes_data=b"x")
        assert await communicator.receive_nothing()
        await communicator.disconnect()
    patched.assert_awaited_once_with(bytes_data=b"x")


@pytest.mark.parametrize("base", [AsyncWebsocketConsumer, AsyncJsonWebsocketConsumer])
async def test_an_overridden_call_hook_still_sees_receive(base: type) -> None:
    class Counting(base):  # type: ignore[misc]
        hooks: list[str] = []

        async def call_hook(self, hook: Any, *args: Any, **kwargs: Any) -> Any:
            self.hooks.append(hook.__name__)
            return await super().call_hook(hook, *args, **kwargs)

    communicator = WebsocketCommunicator(Counting.as_asgi(), "/")
    assert (await communicator.connect())[0]
    await communicator.send_to(text_data="{}")
    assert await communicator.receive_nothing()
    await communicator.disconnect()
    assert Counting.hooks == ["connect", "receive", "disconnect"]
