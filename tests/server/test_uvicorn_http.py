"""``AsyncHttpConsumer`` behind a real uvicorn: plain, streamed and long-polled responses."""

from __future__ import annotations

import asyncio
import logging

import pytest
from django.urls import path

from channelworks.layers import InMemoryChannelLayer
from channelworks.routing import ProtocolTypeRouter, URLRouter
from tests.server.apps.consumers import Broken, Hello, LongPoll, SseBurst, SseFeed
from tests.server.conftest import Serve
from tests.server.live import TIMEOUT, LiveServer, Response, http_request

APP = ProtocolTypeRouter(
    {
        "http": URLRouter(
            [
                path("hello/", Hello.as_asgi()),
                path("broken/", Broken.as_asgi()),
                path("sse/burst/", SseBurst.as_asgi()),
                path("sse/feed/", SseFeed.as_asgi()),
                path("poll/", LongPoll.as_asgi()),
            ]
        )
    }
)


async def fetch(live: LiveServer, method: str, path: str, body: bytes | None = None) -> Response:
    """An ``http.client`` request run in a thread while the server runs in this event loop."""
    return await asyncio.wait_for(
        asyncio.to_thread(http_request, live, method, path, body), 2 * TIMEOUT
    )


class RawStream:
    """One HTTP/1.1 exchange over an asyncio stream, reading a chunked body as it arrives."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.pending = b""
        self.ended = False

    @classmethod
    async def get(cls, live: LiveServer, path: str) -> RawStream:
        reader, writer = await asyncio.open_connection(live.host, live.port)
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {live.host}:{live.port}\r\n"
            f"Accept: text/event-stream\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        return cls(reader, writer)

    async def head(self) -> tuple[int, dict[str, str]]:
        async with asyncio.timeout(TIMEOUT):
            raw = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *lines = raw.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        return int(status_line.split()[1]), headers

    async def event(self) -> bytes | None:
        """The next SSE event (up to its blank line), or None when the body has ended."""
        async with asyncio.timeout(TIMEOUT):
            while b"\n\n" not in self.pending:
                if self.ended:
                    assert self.pending == b"", f"body ended mid-event: {self.pending!r}"
                    return None
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                data = await self.reader.readexactly(size + 2)
                assert data.endswith(b"\r\n")
                self.pending += data[:-2]
                self.ended = size == 0
        event, _, self.pending = self.pending.partition(b"\n\n")
        return event

    async def close(self) -> None:
        self.writer.close()
        async with asyncio.timeout(TIMEOUT):
            await self.writer.wait_closed()


async def test_plain_response(serve: Serve) -> None:
    live = await serve(APP)
    response = await fetch(live, "POST", "/hello/", b"abc")
    assert response.status == 200
    assert response.body == b"POST /hello/ abc"
    assert response.headers["content-type"] == "text/plain"
    assert response.headers["x-test"] == "hello"

    # URLRouter raises ValueError for a path it does not route, as in Channels: the server
    # answers 500 (route HTTP to Django's application for 404 pages)
    missing = await fetch(live, "GET", "/nowhere/")
    assert missing.status == 500


async def test_handler_error_is_500_and_server_keeps_serving(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    live = await serve(APP)
    with caplog.at_level(logging.ERROR, logger="channelworks.consumers"):
        broken = await fetch(live, "GET", "/broken/")
    assert broken.status == 500
    assert broken.body == b"Internal Server Error"
    assert "broken handler" in caplog.text
    after = await fetch(live, "GET", "/hello/")
    assert (after.status, after.body) == (200, b"GET /hello/ ")


async def test_sse_parts_then_final(serve: Serve) -> None:
    live = await serve(APP)
    response = await fetch(live, "GET", "/sse/burst/")
    assert response.status == 200
    assert response.headers["content-type"] == "text/event-stream"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["transfer-encoding"] == "chunked"
    assert response.body == b"data: 0\n\ndata: 1\n\ndata: 2\n\n"


async def test_sse_events_arrive_as_the_layer_sends_them(
    serve: Serve, layer: InMemoryChannelLayer
) -> None:
    live = await serve(APP)
    stream = await RawStream.get(live, "/sse/feed/")
    try:
        status, headers = await stream.head()
        assert status == 200
        assert headers["content-type"] == "text/event-stream"
        assert headers["transfer-encoding"] == "chunked"
        assert await stream.event() == b"data: ready"  # sent after joining "feed"

        # Each event is read before the next is sent: the response really is streamed.
        for n in range(3):
            await layer.group_send("feed", {"type": "feed.event", "data": n})
            assert await stream.event() == f"data: {n}".encode()
        await layer.group_send("feed", {"type": "feed.event", "data": "end", "last": True})
        assert await stream.event() == b"data: end"
        assert await stream.event() is None
    finally:
        await stream.close()


async def test_long_poll_completed_by_a_layer_message(
    serve: Serve, layer: InMemoryChannelLayer
) -> None:
    live = await serve(APP)
    poll = asyncio.create_task(asyncio.to_thread(http_request, live, "GET", "/poll/"))
    try:
        waiting = await asyncio.wait_for(layer.receive("longpoll.waiting"), TIMEOUT)
        await asyncio.sleep(0.05)
        assert not poll.done(), "the long-poll answered before its message came"

        await layer.send(waiting["channel"], {"type": "poll.result", "text": "your result"})
        response = await asyncio.wait_for(poll, 2 * TIMEOUT)
    finally:
        poll.cancel()
    assert (response.status, response.body) == (200, b"your result")
    gone = await asyncio.wait_for(layer.receive("longpoll.gone"), TIMEOUT)
    assert gone["channel"] == waiting["channel"]


async def test_long_poll_client_going_away_ends_the_consumer(
    serve: Serve, layer: InMemoryChannelLayer
) -> None:
    live = await serve(APP)
    stream = await RawStream.get(live, "/poll/")
    try:
        waiting = await asyncio.wait_for(layer.receive("longpoll.waiting"), TIMEOUT)
    finally:
        await stream.close()
    gone = await asyncio.wait_for(layer.receive("longpoll.gone"), TIMEOUT)
    assert gone["channel"] == waiting["channel"]
    # Its disconnect hook ran once.
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(layer.receive("longpoll.gone"), 0.1)
