"""AsyncHttpConsumer: whole responses, streaming, long-polling through the layer, errors."""

from __future__ import annotations

import logging
import traceback

import pytest

from channelworks.consumers import AsyncHttpConsumer
from channelworks.exceptions import StopConsumer
from channelworks.layers import InMemoryChannelLayer
from channelworks.testing import HttpCommunicator
from channelworks.types import Message


class Hello(AsyncHttpConsumer):
    async def handle(self, body: bytes) -> None:
        await self.send_response(
            201, b"got " + body, headers=[("Content-Type", "text/plain"), (b"X-A", b"1")]
        )


async def test_whole_response() -> None:
    response = await HttpCommunicator(Hello.as_asgi(), "POST", "/", body=b"data").get_response()
    assert response == {
        "status": 201,
        "headers": [(b"Content-Type", b"text/plain"), (b"X-A", b"1")],
        "body": b"got data",
    }


async def test_body_in_parts_is_joined() -> None:
    comm = HttpCommunicator(Hello.as_asgi(), "POST", "/")
    comm.sent_request = True
    await comm.send_input({"type": "http.request", "body": b"one ", "more_body": True})
    await comm.send_input({"type": "http.request", "body": b"two"})
    assert (await comm.get_response())["body"] == b"got one two"
    await comm.wait()


class Stream(AsyncHttpConsumer):
    async def handle(self, body: bytes) -> None:
        await self.send_headers(headers=[(b"Content-Type", b"text/event-stream")])
        for n in range(3):
            await self.send_body(f"data: {n}\n\n".encode(), more_body=True)
        await self.send_body(b"")


async def test_streamed_response() -> None:
    comm = HttpCommunicator(Stream.as_asgi(), "GET", "/events")
    response = await comm.get_response()
    assert response["body"] == b"data: 0\n\ndata: 1\n\ndata: 2\n\n"
    await comm.wait()


class LongPoll(AsyncHttpConsumer):
    async def handle(self, body: bytes) -> None:
        assert self.channel_layer is not None
        assert self.channel_name is not None
        await self.channel_layer.group_add("poll", self.channel_name)
        await self.send_headers(headers=[(b"Content-Type", b"application/json")])

    async def poll_result(self, event: Message) -> None:
        await self.send_body(event["data"].encode())


async def test_long_poll_completed_by_a_layer_message(channel_layer: InMemoryChannelLayer) -> None:
    comm = HttpCommunicator(LongPoll.as_asgi(), "GET", "/poll")
    await comm.send_input({"type": "http.request", "body": b""})
    comm.sent_request = True
    assert (await comm.receive_output())["type"] == "http.response.start"
    assert await comm.receive_nothing()
    await channel_layer.group_send("poll", {"type": "poll.result", "data": '{"ok": 1}'})
    assert await comm.receive_output() == {
        "type": "http.response.body",
        "body": b'{"ok": 1}',
        "more_body": False,
    }
    await comm.wait()


async def test_client_disconnect_ends_the_poll(channel_layer: InMemoryChannelLayer) -> None:
    disconnected: list[bool] = []

    class Poll(LongPoll):
        async def disconnect(self) -> None:
            disconnected.append(True)

    comm = HttpCommunicator(Poll.as_asgi(), "GET", "/poll")
    await comm.send_input({"type": "http.request", "body": b""})
    await comm.receive_output()
    await comm.send_input({"type": "http.disconnect"})
    await comm.wait()
    assert disconnected == [True]


async def test_error_before_response_leaves_the_application() -> None:
    # As in Channels: nothing is sent, the error leaves the app (the server answers 500).
    ended: list[bool] = []

    class Broken(AsyncHttpConsumer):
        async def handle(self, body: bytes) -> None:
            raise KeyError("missing")

        async def disconnect(self) -> None:
            ended.append(True)

    comm = HttpCommunicator(Broken.as_asgi(), "GET", "/")
    with pytest.raises(KeyError, match="missing"):
        await comm.get_response()
    assert ended == [True]


async def test_error_after_headers_ends_the_response() -> None:
    class HalfBroken(AsyncHttpConsumer):
        async def handle(self, body: bytes) -> None:
            await self.send_headers()
            await self.send_body(b"part", more_body=True)
            raise KeyError("missing")

    comm = HttpCommunicator(HalfBroken.as_asgi(), "GET", "/")
    await comm.send_input({"type": "http.request"})
    assert (await comm.receive_output())["type"] == "http.response.start"
    assert (await comm.receive_output())["body"] == b"part"
    with pytest.raises(KeyError, match="missing"):
        await comm.wait()


async def test_body_before_headers_is_an_error() -> None:
    class Backwards(AsyncHttpConsumer):
        async def handle(self, body: bytes) -> None:
            await self.send_body(b"too early")

    with pytest.raises(RuntimeError, match="send_headers"):
        await HttpCommunicator(Backwards.as_asgi(), "GET", "/").get_response()


async def test_handle_must_be_overridden() -> None:
    with pytest.raises(NotImplementedError, match="handle"):
        await HttpCommunicator(AsyncHttpConsumer.as_asgi(), "GET", "/").get_response()


async def test_code_after_the_response_still_runs() -> None:
    audit: list[str] = []

    class Audited(AsyncHttpConsumer):
        async def handle(self, body: bytes) -> None:
            await self.send_response(200, b"ok")
            audit.append("written")

    comm = HttpCommunicator(Audited.as_asgi(), "GET", "/")
    assert (await comm.get_response())["status"] == 200
    await comm.wait()
    assert audit == ["written"]


async def test_handle_without_a_response_ends_the_exchange() -> None:
    ended: list[bool] = []

    class Forgetful(AsyncHttpConsumer):
        async def handle(self, body: bytes) -> None:
            pass

        async def disconnect(self) -> None:
            ended.append(True)

    comm = HttpCommunicator(Forgetful.as_asgi(), "GET", "/")
    await comm.send_input({"type": "http.request"})
    await comm.wait()
    assert ended == [True]


async def test_failing_disconnect_runs_once_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[int] = []

    class Messy(AsyncHttpConsumer):
        async def handle(self, body: bytes) -> None:
            await self.send_response(200, b"ok")

        async def disconnect(self) -> None:
            calls.append(1)
            raise RuntimeError("cleanup failed")

    comm = HttpCommunicator(Messy.as_asgi(), "GET", "/")
    with caplog.at_level(logging.ERROR, logger="channelworks.consumers"):
        assert (await comm.get_response())["body"] == b"ok"
        await comm.wait()
    assert calls == [1]
    assert "Messy.disconnect() failed" in caplog.text


async def test_nothing_may_follow_the_last_body_part() -> None:
    class Twice(AsyncHttpConsumer):
        async def handle(self, body: bytes) -> None:
            await self.send_response(200, b"once")
            await self.send_body(b"twice")

    comm = HttpCommunicator(Twice.as_asgi(), "GET", "/")
    assert (await comm.get_response())["body"] == b"once"
    with pytest.raises(RuntimeError, match="already complete"):
        await comm.wait()


async def test_stop_consumer_in_handle_still_runs_disconnect() -> None:
    calls: list[int] = []

    class Stops(AsyncHttpConsumer):
        async def handle(self, body: bytes) -> None:
            await self.send_headers()
            raise StopConsumer

        async def disconnect(self) -> None:
            calls.append(1)

    comm = HttpCommunicator(Stops.as_asgi(), "GET", "/")
    await comm.send_input({"type": "http.request"})
    await comm.wait()
    assert calls == [1]


async def test_layer_cannot_inject_a_request(
    channel_layer: InMemoryChannelLayer, caplog: pytest.LogCaptureFixture
) -> None:
    handled: list[bytes] = []

    class Poll(LongPoll):
        async def handle(self, body: bytes) -> None:
            handled.append(body)
            await super().handle(body)

    comm = HttpCommunicator(Poll.as_asgi(), "GET", "/poll")
    await comm.send_input({"type": "http.request", "body": b"real"})
    assert (await comm.receive_output())["type"] == "http.response.start"
    with caplog.at_level(logging.ERROR, logger="channelworks.consumers"):
        for kind in ("http.request", "http_request", "http.disconnect"):
            await channel_layer.group_send("poll", {"type": kind, "body": b"INJECTED"})
        await channel_layer.group_send("poll", {"type": "poll.result", "data": "done"})
        assert (await comm.receive_output())["body"] == b"done"
    await comm.wait()
    assert handled == [b"real"]
    assert caplog.text.count("protocol events come from the server only") == 3
    assert "KeyError" not in caplog.text


async def test_handler_error_has_no_internal_noise() -> None:
    class Broken(AsyncHttpConsumer):
        async def handle(self, body: bytes) -> None:
            raise LookupError("the real problem")

    with pytest.raises(LookupError, match="the real problem") as info:
        await HttpCommunicator(Broken.as_asgi(), "GET", "/").get_response()
    assert "KeyError" not in "".join(traceback.format_exception(info.value))
