"""WebSocket consumers, sync and async flavours, through WebsocketCommunicator."""

from __future__ import annotations

import inspect
import json
import logging
import threading
from typing import Any
from unittest import mock

import pytest
from asgiref.sync import iscoroutinefunction as asgiref_iscoroutinefunction
from asgiref.sync import markcoroutinefunction

from channelworks.consumers import (
    AsyncJsonWebsocketConsumer,
    AsyncWebsocketConsumer,
    JsonWebsocketConsumer,
    WebsocketConsumer,
)
from channelworks.consumers.websocket import WebsocketCore
from channelworks.exceptions import AcceptConnection, CloseConnection, DenyConnection
from channelworks.layers import InMemoryChannelLayer
from channelworks.testing import WebsocketCommunicator
from channelworks.types import Message, Receive, Scope, Send


class SyncEcho(WebsocketConsumer):
    groups = ["echoes"]

    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data == "close me":
            self.close(code=4001, reason="asked")
        elif text_data == "fail":
            raise RuntimeError("sync receive failed")
        elif text_data is not None:
            self.send(text_data=text_data)
        else:
            self.send(bytes_data=bytes_data)

    def chat_message(self, event: Message) -> None:
        self.send(text_data=f"group:{event['text']}")


class AsyncEcho(AsyncWebsocketConsumer):
    groups = ["echoes"]

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data == "close me":
            await self.close(code=4001, reason="asked")
        elif text_data == "fail":
            raise RuntimeError("async receive failed")
        elif text_data is not None:
            await self.send(text_data=text_data)
        else:
            await self.send(bytes_data=bytes_data)

    async def chat_message(self, event: Message) -> None:
        await self.send(text_data=f"group:{event['text']}")


class SyncJson(JsonWebsocketConsumer):
    def receive_json(self, content: Any) -> None:
        if content == "bye":
            self.send_json({"bye": True}, close=True)
        else:
            self.send_json({"echo": content})


class AsyncJson(AsyncJsonWebsocketConsumer):
    async def receive_json(self, content: Any) -> None:
        if content == "bye":
            await self.send_json({"bye": True}, close=True)
        else:
            await self.send_json({"echo": content})


ECHOES = [SyncEcho, AsyncEcho]
JSONS = [SyncJson, AsyncJson]


@pytest.mark.parametrize("consumer", ECHOES)
@pytest.mark.usefixtures("channel_layer")
async def test_echo_text_and_bytes(consumer: type[WebsocketConsumer]) -> None:
    comm = WebsocketCommunicator(consumer.as_asgi(), "/echo/")
    assert await comm.connect() == (True, None)
    await comm.send_to(text_data="hello")
    assert await comm.receive_from() == "hello"
    await comm.send_to(bytes_data=b"\x00\x01")
    assert await comm.receive_from() == b"\x00\x01"
    await comm.disconnect()


@pytest.mark.parametrize("consumer", ECHOES)
async def test_groups_joined_on_connect_left_on_disconnect(
    consumer: type[WebsocketConsumer], channel_layer: InMemoryChannelLayer
) -> None:
    first = WebsocketCommunicator(consumer.as_asgi(), "/")
    second = WebsocketCommunicator(consumer.as_asgi(), "/")
    await first.connect()
    await second.connect()
    await channel_layer.group_send("echoes", {"type": "chat.message", "text": "all"})
    assert await first.receive_from() == "group:all"
    assert await second.receive_from() == "group:all"
    await second.disconnect()
    assert len(channel_layer._groups["echoes"]) == 1
    await first.disconnect()
    assert "echoes" not in channel_layer._groups


@pytest.mark.parametrize("consumer", ECHOES)
@pytest.mark.usefixtures("channel_layer")
async def test_close_with_code_and_reason(consumer: type[WebsocketConsumer]) -> None:
    comm = WebsocketCommunicator(consumer.as_asgi(), "/")
    await comm.connect()
    await comm.send_to(text_data="close me")
    assert await comm.receive_output() == {
        "type": "websocket.close",
        "code": 4001,
        "reason": "asked",
    }
    await comm.disconnect(code=4001)


@pytest.mark.parametrize("consumer", ECHOES)
async def test_handler_error_closes_1011_and_logs(
    consumer: type[WebsocketConsumer],
    channel_layer: InMemoryChannelLayer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    comm = WebsocketCommunicator(consumer.as_asgi(), "/")
    await comm.connect()
    with caplog.at_level(logging.ERROR, logger="channelworks.consumers"):
        await comm.send_to(text_data="fail")
        assert await comm.receive_output() == {"type": "websocket.close", "code": 1011}
        # then the error leaves the application, as in Channels (the server logs it)
        with pytest.raises(RuntimeError, match="receive failed"):
            await comm.wait()
    record = caplog.records[-1]
    assert consumer.__name__ in record.getMessage()
    assert "websocket.receive" in record.getMessage()
    assert "RuntimeError" in record.getMessage()
    assert record.exc_info is None  # one line: the traceback is the server's to log
    assert "echoes" not in channel_layer._groups  # groups left even on a crash


@pytest.mark.parametrize("consumer", ECHOES)
@pytest.mark.parametrize(
    ("message_type", "reason"),
    [
        ("send", "'send' is not a handler"),
        ("close", "'close' is not a handler"),
        ("no.such.handler", "No handler for message type 'no.such.handler'"),
        ("websocket.receive", "protocol events come from the server only"),
        ("websocket.disconnect", "protocol events come from the server only"),
        ("websocket.connect", "protocol events come from the server only"),
        ("websocket_receive", "protocol events come from the server only"),
        ("websocket_disconnect", "protocol events come from the server only"),
    ],
)
async def test_bad_layer_message_is_logged_and_dropped(
    consumer: type[WebsocketConsumer],
    message_type: str,
    reason: str,
    channel_layer: InMemoryChannelLayer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    comm = WebsocketCommunicator(consumer.as_asgi(), "/")
    await comm.connect()
    with caplog.at_level(logging.ERROR, logger="channelworks.consumers"):
        await channel_layer.group_send("echoes", {"type": message_type, "text": "injected"})
        await channel_layer.group_send("echoes", {"type": "chat.message", "text": "after"})
        assert await comm.receive_from() == "group:after"  # still open, nothing injected
    assert reason in caplog.text
    assert consumer.__name__ in caplog.text
    await comm.disconnect()


CLOSE_CODES: list[int] = []


class SyncRemember(SyncEcho):
    def disconnect(self, code: int) -> None:
        CLOSE_CODES.append(code)


class AsyncRemember(AsyncEcho):
    async def disconnect(self, code: int) -> None:
        CLOSE_CODES.append(code)


@pytest.mark.parametrize("consumer", [SyncRemember, AsyncRemember])
@pytest.mark.parametrize(("frame", "code"), [("fail", 1011), ("close me", 4001)])
async def test_consumer_side_close_runs_disconnect_once(
    consumer: type[WebsocketConsumer], frame: str, code: int, channel_layer: InMemoryChannelLayer
) -> None:
    CLOSE_CODES.clear()
    comm = WebsocketCommunicator(consumer.as_asgi(), "/")
    await comm.connect()
    await comm.send_to(text_data=frame)
    assert (await comm.receive_output())["code"] == code
    if frame == "close me":  # a normal close: the server reports the disconnect
        await comm.disconnect(code)
    else:
        with pytest.raises(RuntimeError):
            await comm.wait()
    assert code in CLOSE_CODES
    assert len(CLOSE_CODES) == 1
    assert "echoes" not in channel_layer._groups


@pytest.mark.parametrize("consumer", JSONS)
async def test_json_round_trip_and_close(consumer: type[JsonWebsocketConsumer]) -> None:
    comm = WebsocketCommunicator(consumer.as_asgi(), "/")
    await comm.connect()
    await comm.send_json_to({"n": [1, 2]})
    assert await comm.receive_json_from() == {"echo": {"n": [1, 2]}}
    await comm.send_to(bytes_data=b'{"as": "bytes"}')
    assert await comm.receive_json_from() == {"echo": {"as": "bytes"}}
    await comm.send_json_to("bye")
    assert await comm.receive_json_from() == {"bye": True}
    assert (await comm.receive_output())["type"] == "websocket.close"


@pytest.mark.parametrize("consumer", JSONS)
@pytest.mark.parametrize("frame", ["{not json", "", "\udcff"])
async def test_bad_json_closes_1007(consumer: type[JsonWebsocketConsumer], frame: str) -> None:
    comm = WebsocketCommunicator(consumer.as_asgi(), "/")
    await comm.connect()
    await comm.send_to(text_data=frame)
    closing = await comm.receive_output()
    assert closing["type"] == "websocket.close"
    assert closing["code"] == 1007
    await comm.wait()


async def test_async_json_codec_overrides_are_awaited() -> None:
    class AsyncCodec(AsyncJsonWebsocketConsumer):
        @classmethod
        async def decode_json(cls, text_data: str | bytes) -> Any:
            return {"decoded": json.loads(text_data)}

        @classmethod
        async def encode_json(cls, content: Any) -> str:
            return json.dumps(content, sort_keys=True)

        async def receive_json(self, content: Any) -> None:
            await self.send_json({"z": 1, "a": content})

    comm = WebsocketCommunicator(AsyncCodec.as_asgi(), "/")
    await comm.connect()
    await comm.send_to(text_data="[1]")
    assert await comm.receive_from() == '{"a": {"decoded": [1]}, "z": 1}'
    await comm.send_to(text_data="nope")
    assert (await comm.receive_output())["code"] == 1007
    await comm.wait()


async def test_custom_json_codec() -> None:
    # Channels' way: the async consumer's codec methods are async classmethods
    class Upper(AsyncJsonWebsocketConsumer):
        @classmethod
        async def encode_json(cls, content: Any) -> str:
            return (await super().encode_json(content)).upper()

        async def receive_json(self, content: Any) -> None:
            await self.send_json({"k": content})

    # a plain classmethod that does not call the base works too
    class Lower(Upper):
        @classmethod
        def encode_json(cls, content: Any) -> str:  # type: ignore[override]
            return json.dumps(content).lower()

    for consumer, expected in ((Upper, '{"K": "V"}'), (Lower, '{"k": "v"}')):
        comm = WebsocketCommunicator(consumer.as_asgi(), "/")
        await comm.connect()
        await comm.send_json_to("V" if consumer is Lower else "v")
        assert await comm.receive_from() == expected
        await comm.disconnect()


class Gate(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        query = self.scope["query_string"]
        if query == b"deny":
            raise DenyConnection
        if query == b"accept":
            raise AcceptConnection
        if query == b"proto":
            await self.accept(subprotocol="chat.v2", headers=[(b"x-extra", b"1")])
        if query == b"custom":
            raise CloseConnection(4003, "not today")


async def test_deny_connection_refuses_before_accept() -> None:
    comm = WebsocketCommunicator(Gate.as_asgi(), "/?deny")
    assert await comm.connect() == (False, 1000)


async def test_accept_connection_exception_accepts() -> None:
    comm = WebsocketCommunicator(Gate.as_asgi(), "/?accept")
    assert await comm.connect() == (True, None)
    await comm.disconnect()


async def test_subprotocol_and_headers_on_accept() -> None:
    comm = WebsocketCommunicator(Gate.as_asgi(), "/?proto", subprotocols=["chat.v2"])
    assert await comm.connect() == (True, "chat.v2")
    assert comm.response_headers == [(b"x-extra", b"1")]
    await comm.disconnect()


async def test_close_connection_error_gives_its_code() -> None:
    comm = WebsocketCommunicator(Gate.as_asgi(), "/?custom")
    assert await comm.connect() == (False, 4003)


async def test_disconnect_hook_gets_the_code() -> None:
    codes: list[int] = []

    class Remember(WebsocketConsumer):
        def disconnect(self, code: int) -> None:
            codes.append(code)

    comm = WebsocketCommunicator(Remember.as_asgi(), "/")
    await comm.connect()
    await comm.disconnect(code=4321)
    assert codes == [4321]


async def test_send_requires_a_payload() -> None:
    class Nothing(AsyncWebsocketConsumer):
        async def receive(
            self, text_data: str | None = None, bytes_data: bytes | None = None
        ) -> None:
            await self.send()

    comm = WebsocketCommunicator(Nothing.as_asgi(), "/")
    await comm.connect()
    await comm.send_to(text_data="x")
    assert await comm.receive_output() == {"type": "websocket.close", "code": 1011}
    with pytest.raises(ValueError, match="text_data or bytes_data"):
        await comm.wait()


async def test_groups_without_a_layer_fail_clearly(caplog: pytest.LogCaptureFixture) -> None:
    comm = WebsocketCommunicator(AsyncEcho.as_asgi(), "/")
    with caplog.at_level(logging.ERROR, logger="channelworks.consumers"):
        assert await comm.connect() == (False, 1011)
    with pytest.raises(ValueError, match="has groups but no channel layer"):
        await comm.wait()


async def test_disconnect_runs_even_if_the_close_frame_cannot_be_sent(
    channel_layer: InMemoryChannelLayer, caplog: pytest.LogCaptureFixture
) -> None:
    CLOSE_CODES.clear()
    consumer = AsyncRemember.as_asgi()

    async def client_gone_on_close(scope: Scope, receive: Receive, send: Send) -> None:
        async def flaky_send(message: Message) -> None:
            if message["type"] == "websocket.close":
                raise OSError("client already gone")
            await send(message)

        await consumer(scope, receive, flaky_send)

    comm = WebsocketCommunicator(client_gone_on_close, "/")
    await comm.connect()
    await comm.send_to(text_data="fail")
    with pytest.raises(RuntimeError, match="receive failed"):
        await comm.wait()
    assert CLOSE_CODES == [1011]
    assert "echoes" not in channel_layer._groups
    assert "could not send its close frame" in caplog.text


class ServerClosedConnection(OSError):
    """What an ASGI server raises for a frame sent on a connection that is gone."""


@pytest.mark.parametrize("consumer", [SyncRemember, AsyncRemember])
@pytest.mark.parametrize("refused", ["websocket.accept", "websocket.send"])
async def test_client_gone_before_a_frame_ends_the_consumer_quietly(
    consumer: type[WebsocketConsumer],
    refused: str,
    channel_layer: InMemoryChannelLayer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    CLOSE_CODES.clear()
    app = consumer.as_asgi()
    sent: list[Message] = []

    async def client_left(scope: Scope, receive: Receive, send: Send) -> None:
        async def refusing_send(message: Message) -> None:
            if message["type"] == refused:
                raise ServerClosedConnection("client disconnected")
            sent.append(message)
            await send(message)

        await app(scope, receive, refusing_send)

    comm = WebsocketCommunicator(client_left, "/")
    with caplog.at_level(logging.INFO, logger="channelworks.consumers"):
        await comm.send_input({"type": "websocket.connect"})
        if refused == "websocket.send":
            assert await comm.receive_output() == {"type": "websocket.accept", "subprotocol": None}
            await comm.send_to(text_data="hello")
        await comm.wait()
    assert CLOSE_CODES == [1006]
    assert "echoes" not in channel_layer._groups
    assert not [m for m in sent if m["type"] == "websocket.close"]  # no close on a dead link
    assert "the client went away" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_an_oserror_of_the_handler_itself_is_still_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(AsyncWebsocketConsumer):
        async def connect(self) -> None:
            await self.accept()

        async def receive(self, text_data: str | None = None, bytes_data: Any = None) -> None:
            raise FileNotFoundError("templates/missing.txt")

    comm = WebsocketCommunicator(Broken.as_asgi(), "/")
    await comm.connect()
    with caplog.at_level(logging.ERROR, logger="channelworks.consumers"):
        await comm.send_to(text_data="x")
        assert await comm.receive_output() == {"type": "websocket.close", "code": 1011}
        with pytest.raises(FileNotFoundError):
            await comm.wait()
    assert "failed handling message type 'websocket.receive'" in caplog.text


async def test_a_subclass_awaits_the_frame_handler_of_its_base() -> None:
    """``websocket_receive`` is a plain ``def`` marked as a coroutine function (one coroutine
    fewer per frame); a subclass wrapping it with ``await super()`` works as in Channels."""

    class Wrapping(AsyncWebsocketConsumer):
        async def websocket_receive(self, message: Message) -> None:
            await self.send(text_data="before")
            await super().websocket_receive(message)

        async def receive(self, text_data: str | None = None, bytes_data: Any = None) -> None:
            await self.send(text_data=f"got {text_data}")

    assert inspect.iscoroutinefunction(AsyncWebsocketConsumer.websocket_receive) or (
        asgiref_iscoroutinefunction(AsyncWebsocketConsumer.websocket_receive)
    )
    comm = WebsocketCommunicator(Wrapping.as_asgi(), "/")
    await comm.connect()
    await comm.send_to(text_data="x")
    assert await comm.receive_from() == "before"
    assert await comm.receive_from() == "got x"
    await comm.disconnect()


async def test_receive_replaced_after_the_first_frame_is_called_the_new_way() -> None:
    """Frames go to an ``async def receive`` directly, found once per class; a class whose
    ``receive`` is patched (a test's mock) or whose ``call_hook`` is wrapped is not."""
    hooked: list[str] = []

    class Direct(AsyncWebsocketConsumer):
        async def receive(self, text_data: str | None = None, bytes_data: Any = None) -> None:
            await self.send(text_data=f"direct {text_data}")

    class Hooked(Direct):
        async def call_hook(self, hook: Any, *args: Any, **kwargs: Any) -> Any:
            hooked.append(hook.__name__)
            return await super().call_hook(hook, *args, **kwargs)

    comm = WebsocketCommunicator(Direct.as_asgi(), "/")
    await comm.connect()
    await comm.send_to(text_data="1")
    assert await comm.receive_from() == "direct 1"

    async def patched(self: Direct, text_data: str | None = None, bytes_data: Any = None) -> None:
        await self.send(text_data=f"patched {text_data}")

    with mock.patch.object(Direct, "receive", patched):
        await comm.send_to(text_data="2")
        assert await comm.receive_from() == "patched 2"
    await comm.send_to(text_data="3")
    assert await comm.receive_from() == "direct 3"
    await comm.disconnect()

    comm = WebsocketCommunicator(Hooked.as_asgi(), "/")
    await comm.connect()
    await comm.send_to(text_data="4")
    assert await comm.receive_from() == "direct 4"
    assert hooked == ["connect", "receive"]
    await comm.disconnect()


async def test_a_handler_marked_as_a_coroutine_function_is_awaited(
    channel_layer: InMemoryChannelLayer,
) -> None:
    """A plain ``def`` marked with asgiref's ``markcoroutinefunction`` returns an awaitable:
    dispatch awaits it on the loop, in a sync consumer too (it never goes to a thread)."""
    threads: list[bool] = []

    class Marked(WebsocketConsumer):
        groups = ["marked"]

        @markcoroutinefunction
        def chat_message(self, event: Message) -> Any:
            threads.append(threading.current_thread() is threading.main_thread())
            return self._reply(event["text"])

        async def _reply(self, text: str) -> None:
            await WebsocketCore._send(self, text_data=f"marked {text}")

    comm = WebsocketCommunicator(Marked.as_asgi(), "/")
    await comm.connect()
    await channel_layer.group_send("marked", {"type": "chat.message", "text": "hi"})
    assert await comm.receive_from() == "marked hi"
    assert threads == [True]
    await comm.disconnect()


class Counted(AsyncWebsocketConsumer):
    """Counts the frames that reach ``receive`` through ``call_hook``."""

    async def connect(self) -> None:
        hooked = self.call_hook
        self.hooked = 0

        async def call_hook(hook: Any, *args: Any, **kwargs: Any) -> Any:
            self.hooked += 1
            return await hooked(hook, *args, **kwargs)

        self.call_hook = call_hook  # type: ignore[method-assign]
        await self.accept()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send(text_data=f"{text_data} {self.hooked}")


async def test_frames_of_an_async_receive_skip_call_hook_when_the_class_keeps_it() -> None:
    # The hot path: a class that does not override call_hook has its frames handed to its
    # async receive directly (no coroutine around it); every frame, not only the first.
    comm = WebsocketCommunicator(Counted.as_asgi(), "/")
    await comm.connect()
    for number in range(3):
        await comm.send_to(text_data=f"frame {number}")
        assert await comm.receive_from() == f"frame {number} 0"
    await comm.disconnect()


async def test_a_subclass_that_wraps_call_hook_is_not_sent_its_parents_direct_frames() -> None:
    # The parent's finding must not be inherited, even when a base's __init_subclass__ (a
    # registry's) does not call super(): the subclass's call_hook must see its frames.
    registry: list[type[Any]] = []

    class Base(AsyncWebsocketConsumer):
        def __init_subclass__(cls, **kwargs: Any) -> None:
            registry.append(cls)

        async def receive(self, text_data: str | None = None, bytes_data: Any = None) -> None:
            await self.send(text_data=f"{type(self).__name__}: {text_data}")

    class Guarded(Base):
        async def call_hook(self, hook: Any, *args: Any, **kwargs: Any) -> Any:
            if kwargs.get("text_data") == "forbidden":
                await self.send(text_data="refused by call_hook")
                return None
            return await super().call_hook(hook, *args, **kwargs)

    for cls, text, answer in [
        (Base, "hello", "Base: hello"),
        (Guarded, "forbidden", "refused by call_hook"),
        (Guarded, "fine", "Guarded: fine"),
    ]:
        comm = WebsocketCommunicator(cls.as_asgi(), "/")
        await comm.connect()
        await comm.send_to(text_data=text)
        assert await comm.receive_from() == answer
        await comm.disconnect()
    assert registry == [Guarded]
