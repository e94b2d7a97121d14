"""Channels' consumers as its documentation describes them, imported as a Channels project does.

Written from Channels' "Consumers" and "Generic consumers" documentation: ``send_response``
takes headers as a list of pairs or a dict; an exception in a handler leaves the application
(the server logs it; a test communicator raises it), after our clean 1011 close on a socket;
``as_asgi(**initkwargs)`` hands its keywords to the consumer's ``__init__``; the async JSON
consumer's ``encode_json`` / ``decode_json`` are async classmethods that subclasses await and
override. And bad input stays bad input: a JSON frame nested 100,000 deep closes 1007 with one
short log line (issue #13), where Channels crashes with a RecursionError.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from typing import Any

import pytest


def generic(name: str) -> Any:
    module = "http" if name == "AsyncHttpConsumer" else "websocket"
    return getattr(importlib.import_module(f"channels.generic.{module}"), name)


def tool(name: str) -> Any:
    return getattr(importlib.import_module("channels.testing"), name)


async def test_send_response_takes_headers_as_a_dict() -> None:
    class Hello(generic("AsyncHttpConsumer")):  # type: ignore[misc]
        async def handle(self, body: bytes) -> None:
            await self.send_response(200, b"hi", headers={b"Content-Type": b"text/plain"})

    response = await tool("HttpCommunicator")(Hello.as_asgi(), "GET", "/").get_response()
    assert response["status"] == 200
    assert response["headers"] == [(b"Content-Type", b"text/plain")]


async def test_an_http_handler_error_leaves_the_application() -> None:
    ended: list[bool] = []

    class Broken(generic("AsyncHttpConsumer")):  # type: ignore[misc]
        async def handle(self, body: bytes) -> None:
            raise AssertionError("Error correctly raised")

        async def disconnect(self) -> None:
            ended.append(True)

    communicator = tool("HttpCommunicator")(Broken(), "GET", "/")
    with pytest.raises(AssertionError, match="Error correctly raised"):
        await communicator.get_response(timeout=0.5)
    assert ended == [True]


async def test_a_websocket_handler_error_closes_1011_then_leaves_the_application() -> None:
    class Broken(generic("AsyncWebsocketConsumer")):  # type: ignore[misc]
        async def receive(self, text_data: Any = None, bytes_data: Any = None) -> None:
            raise KeyError("no such room")

    communicator = tool("WebsocketCommunicator")(Broken.as_asgi(), "/")
    await communicator.connect()
    await communicator.send_to(text_data="join")
    assert await communicator.receive_output() == {"type": "websocket.close", "code": 1011}
    with pytest.raises(KeyError, match="no such room"):
        await communicator.wait()


async def test_one_instance_serves_connections_one_after_the_other() -> None:
    class Hello(generic("AsyncHttpConsumer")):  # type: ignore[misc]
        async def handle(self, body: bytes) -> None:
            await self.send_response(200, b"hi")

    app = Hello()
    for _ in range(2):
        response = await tool("HttpCommunicator")(app, "GET", "/").get_response()
        assert response["body"] == b"hi"


async def test_as_asgi_hands_its_keywords_to_init() -> None:
    class Room(generic("AsyncWebsocketConsumer")):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.room = kwargs.pop("room")
            super().__init__(*args, **kwargs)

        async def connect(self) -> None:
            await self.accept()
            await self.send(text_data=self.room)

    communicator = tool("WebsocketCommunicator")(Room.as_asgi(room="lobby"), "/")
    assert await communicator.connect() == (True, None)
    assert await communicator.receive_from() == "lobby"
    await communicator.disconnect()


def test_as_asgi_refuses_keywords_nobody_takes() -> None:
    class Strict(generic("AsyncWebsocketConsumer")):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()

    with pytest.raises(TypeError, match=r"Strict\.as_asgi"):
        Strict.as_asgi(room="lobby")
    with pytest.raises(TypeError, match="not an attribute"):
        generic("AsyncWebsocketConsumer").as_asgi(room="lobby")


async def test_json_codec_methods_are_async_classmethods() -> None:
    class Shouting(generic("AsyncJsonWebsocketConsumer")):  # type: ignore[misc]
        @classmethod
        async def decode_json(cls, text_data: str) -> Any:
            return {"said": await super().decode_json(text_data)}

        @classmethod
        async def encode_json(cls, content: Any) -> str:
            text: str = await super().encode_json(content)
            return text.upper()

        async def receive_json(self, content: Any, **kwargs: Any) -> None:
            text = await self.encode_json(content)  # as Channels' subclasses do
            await self.send(text_data=text)

    communicator = tool("WebsocketCommunicator")(Shouting.as_asgi(), "/")
    await communicator.connect()
    await communicator.send_json_to(["hi"])
    assert await communicator.receive_from() == '{"SAID": ["HI"]}'
    await communicator.disconnect()


async def test_json_nested_too_deep_closes_1007_with_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Echo(generic("AsyncJsonWebsocketConsumer")):  # type: ignore[misc]
        async def receive_json(self, content: Any, **kwargs: Any) -> None:
            await self.send_json(content)

    communicator = tool("WebsocketCommunicator")(Echo.as_asgi(), "/")
    await communicator.connect()
    with caplog.at_level(logging.INFO, logger="channelworks.consumers"):
        await communicator.send_to(text_data="[" * 100_000 + "]" * 100_000)
        assert await communicator.receive_output() == {
            "type": "websocket.close",
            "code": 1007,
            "reason": "JSON nested too deep",
        }
        await communicator.wait()
    (record,) = caplog.records
    assert record.exc_info is None
    assert len(record.getMessage()) < 200


def recorder() -> Any:
    consumer = importlib.import_module("channels.consumer")

    class Subscriptions(consumer.AsyncConsumer):  # type: ignore[misc,name-defined]
        """A handler starts a task; a message right behind must find it started."""

        log: list[str]

        async def subscribe(self, message: dict[str, Any]) -> None:
            self.log = []
            self.watcher = asyncio.create_task(self.watch())

        async def watch(self) -> None:
            self.log.append("watching")
            await asyncio.Event().wait()

        async def stop(self, message: dict[str, Any]) -> None:
            self.log.append("stop")
            self.watcher.cancel()
            await self.send({"type": "log", "log": self.log})

    return Subscriptions


async def test_tasks_a_handler_starts_run_before_the_next_message() -> None:
    # Channels hands each message to its handler through the event loop; messages queued
    # back to back must not starve what the previous handler started.
    communicator = tool("ApplicationCommunicator")(recorder().as_asgi(), {"type": "channel"})
    await communicator.send_input({"type": "subscribe"})
    await communicator.send_input({"type": "stop"})
    assert (await communicator.receive_output())["log"] == ["watching", "stop"]
    await communicator.stop()


async def test_same_for_channel_layer_messages() -> None:
    layers = importlib.import_module("channels.layers")
    layers.channel_layers.configure(
        {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    )
    layer = layers.get_channel_layer()

    class Named(recorder()):  # type: ignore[misc]
        async def hello(self, message: dict[str, Any]) -> None:
            await self.send({"type": "name", "name": self.channel_name})

    communicator = tool("ApplicationCommunicator")(Named.as_asgi(), {"type": "channel"})
    await communicator.send_input({"type": "hello"})
    name = (await communicator.receive_output())["name"]
    await layer.send(name, {"type": "subscribe"})
    await layer.send(name, {"type": "stop"})
    assert (await communicator.receive_output())["log"] == ["watching", "stop"]
    await communicator.stop()
    await layer.close()
