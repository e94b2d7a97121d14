"""Per-connection limits behind a real uvicorn, driven by the real ``websockets`` client.

What a client sees when it meets each limit (docs/limits.md): 1008 on a flood, an error
frame when frames are dropped, 1013 when it does not read, HTTP 403 for a handshake over a
limit or a connection over a cap; and a normal client is never limited by the defaults.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from channelworks import limits
from channelworks.consumers import (
    AsyncJsonWebsocketConsumer,
    AsyncWebsocketConsumer,
    WebsocketConsumer,
)
from channelworks.limits import connections, stats
from channelworks.types import ASGIApp, Receive, Scope, Send
from tests.server.apps.consumers import AsyncEcho, SyncEcho
from tests.server.conftest import Serve
from tests.server.live import TIMEOUT, recv, recv_text, refused_status, ws_connect


@pytest.fixture(autouse=True)
def _fresh_limits() -> Iterator[None]:
    limits.configure(None)
    stats.reset()
    connections.floods.clear()
    yield
    limits.configure(None)
    connections.floods.clear()


async def read_until_closed(ws: ClientConnection) -> tuple[int | None, str | None]:
    """Read (and drop) whatever was sent before the close frame; return its code and reason."""
    try:
        async with asyncio.timeout(TIMEOUT):
            while True:
                await ws.recv()
    except ConnectionClosed:
        return ws.close_code, ws.close_reason


class FloodLimited(AsyncEcho):
    limits = {"messages_per_second": 10, "message_burst": 20}


class SyncFloodLimited(SyncEcho):
    limits = {"messages_per_second": 10, "message_burst": 20}


@pytest.mark.parametrize("consumer", [FloodLimited, SyncFloodLimited])
async def test_a_flood_is_closed_with_1008_and_others_keep_their_echo(
    serve: Serve, consumer: type[AsyncEcho | SyncEcho]
) -> None:
    live = await serve(consumer.as_asgi())
    async with ws_connect(live.ws("/")) as quiet, ws_connect(live.ws("/")) as flood:
        try:
            for n in range(100):
                await flood.send(f"flood {n}")
        except ConnectionClosed:
            pass
        assert await read_until_closed(flood) == (1008, "rate limit exceeded")
        await quiet.send("still here")
        assert await recv(quiet) == "still here"
    assert stats.rate_closed == 1


async def test_a_flooder_that_reconnects_gets_no_fresh_burst(serve: Serve) -> None:
    live = await serve(FloodLimited.as_asgi())  # 10 frames/s, bursts of 20

    async def echoes_before_close(ws: ClientConnection) -> int:
        echoed = 0
        try:
            for n in range(40):
                await ws.send(f"flood {n}")
        except ConnectionClosed:
            pass
        try:
            async with asyncio.timeout(TIMEOUT):
                while True:
                    await ws.recv()
                    echoed += 1
        except ConnectionClosed:
            assert ws.close_code == 1008
        return echoed

    async with ws_connect(live.ws("/")) as first:
        assert await echoes_before_close(first) == 20  # a fresh client has its burst
    async with ws_connect(live.ws("/")) as again:  # same address, new port, at once
        assert await echoes_before_close(again) < 5  # only what refilled meanwhile
    assert stats.rate_closed == 2


class Dropping(AsyncJsonWebsocketConsumer):
    limits = {"messages_per_second": 0.001, "message_burst": 3, "policy": "drop"}

    async def receive_json(self, content: Any) -> None:
        await self.send_json({"echo": content})


async def test_policy_drop_sends_one_error_frame_and_keeps_the_socket(serve: Serve) -> None:
    live = await serve(Dropping.as_asgi())
    async with ws_connect(live.ws("/")) as ws:
        for n in range(6):
            await ws.send(json.dumps(n))
        frames = [json.loads(await recv_text(ws)) for _ in range(4)]
        assert frames == [{"echo": 0}, {"echo": 1}, {"echo": 2}, {"error": "rate_limited"}]
        async with asyncio.timeout(TIMEOUT):
            await (await ws.ping())  # still open, and nothing more was sent before the pong
        assert stats.rate_dropped == 3
        assert stats.rate_closed == 0


class PerUser(AsyncEcho):
    limits = {"user_messages_per_second": 0.001, "user_message_burst": 4}


def with_user(app: ASGIApp) -> ASGIApp:
    """Sets ``scope["user"]`` to an authenticated user named by the query string."""

    class User:
        is_authenticated = True

        def __init__(self, pk: str) -> None:
            self.pk = pk

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        scope = {**scope, "user": User(scope["query_string"].decode())}
        await app(scope, receive, send)

    return middleware


async def test_a_users_connections_share_its_rate(serve: Serve) -> None:
    live = await serve(with_user(PerUser.as_asgi()))
    async with (
        ws_connect(live.ws("/?ann")) as first,
        ws_connect(live.ws("/?ann")) as second,
        ws_connect(live.ws("/?bob")) as other,
    ):
        for ws in (first, second, first, second):
            await ws.send("hi")
            assert await recv(ws) == "hi"
        await second.send("one too many")
        assert await read_until_closed(second) == (1008, "rate limit exceeded")
        await other.send("bob has his own")
        assert await recv(other) == "bob has his own"


NOISE = os.urandom(65536)


class Firehose(AsyncWebsocketConsumer):
    """On "go", sends 64 KiB frames until it is stopped; records its disconnect code."""

    limits = {"send_timeout": 0.2, "close_wait": TIMEOUT}
    codes: list[int] = []
    ended: asyncio.Event
    loop: asyncio.AbstractEventLoop

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        while True:
            await self.send(bytes_data=NOISE)  # incompressible: the client may deflate

    async def disconnect(self, code: int) -> None:
        Firehose.codes.append(code)
        Firehose.ended.set()


class SyncFirehose(WebsocketConsumer):
    """``Firehose`` as a sync consumer: its sends come from worker threads."""

    limits = Firehose.limits

    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        while True:
            self.send(bytes_data=NOISE)

    def disconnect(self, code: int) -> None:
        Firehose.codes.append(code)
        Firehose.loop.call_soon_threadsafe(Firehose.ended.set)


@pytest.mark.parametrize("consumer", [Firehose, SyncFirehose])
async def test_a_client_that_does_not_read_is_closed_with_1013(
    serve: Serve, consumer: type[Firehose | SyncFirehose]
) -> None:
    Firehose.codes, Firehose.ended = [], asyncio.Event()
    Firehose.loop = asyncio.get_running_loop()
    live = await serve(consumer.as_asgi())
    async with ws_connect(live.ws("/")) as ws:
        ws.transport.pause_reading()  # the client stops reading: the server's buffers fill
        await ws.send("go")
        async with asyncio.timeout(TIMEOUT):
            await Firehose.ended.wait()  # closed on the server while the client waits
        assert stats.slow_closed == 1
        assert Firehose.codes == [1013]
        ws.transport.resume_reading()
        assert await read_until_closed(ws) == (1013, "client too slow")


async def released(down_to: int) -> None:
    """Wait (bounded) until the process holds at most ``down_to`` connection slots."""
    for _ in range(int(TIMEOUT / 0.01)):
        if connections.total <= down_to:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{connections.total} slots still held, expected {down_to}")


async def test_the_process_cap_refuses_the_handshake_with_403(serve: Serve) -> None:
    before = connections.total
    live = await serve(AsyncEcho.as_asgi(limits={"max_connections": before + 2}))
    async with ws_connect(live.ws("/")), ws_connect(live.ws("/")) as second:
        assert await refused_status(live.ws("/")) == 403
        await second.send("served")
        assert await recv(second) == "served"
    assert stats.refused_process_cap == 1
    await released(before)
    async with ws_connect(live.ws("/")) as again:  # their slots were given back
        await again.send("back")
        assert await recv(again) == "back"


async def test_the_user_cap_refuses_that_users_next_connection(serve: Serve) -> None:
    app = with_user(AsyncEcho.as_asgi(limits={"max_connections_per_user": 2}))
    live = await serve(app)
    async with ws_connect(live.ws("/?ann")), ws_connect(live.ws("/?ann")):
        assert await refused_status(live.ws("/?ann")) == 403
        async with ws_connect(live.ws("/?bob")) as bob:
            await bob.send("bob is fine")
            assert await recv(bob) == "bob is fine"
    assert stats.refused_user_cap == 1


@pytest.mark.parametrize(
    ("limit", "url", "options", "counter"),
    [
        ("max_header_bytes", "/", {"additional_headers": {"x-big": "y" * 300}}, "headers"),
        ("max_subprotocols", "/", {"subprotocols": ["a", "b", "c"]}, "subprotocols"),
        ("max_path_length", "/" + "p" * 300, {}, "path"),
    ],
)
async def test_a_handshake_over_a_limit_is_refused_with_403(
    serve: Serve, limit: str, url: str, options: dict[str, Any], counter: str
) -> None:
    size = {"max_header_bytes": 256, "max_subprotocols": 2, "max_path_length": 256}[limit]
    live = await serve(AsyncEcho.as_asgi(limits={limit: size}))
    with pytest.raises(InvalidStatus) as refused:
        await connect(live.ws(url), open_timeout=TIMEOUT, **options)
    assert refused.value.response.status_code == 403
    assert getattr(stats, f"refused_{counter}") == 1
    async with ws_connect(live.ws("/")) as normal:
        await normal.send("ok")
        assert await recv(normal) == "ok"


async def test_a_normal_client_is_never_limited_by_the_defaults(serve: Serve) -> None:
    live = await serve(AsyncEcho.as_asgi())
    async with ws_connect(live.ws("/")) as ws:
        for n in range(150):  # a burst well beyond any person's typing
            await ws.send(f"message {n}")
        assert [await recv(ws) for _ in range(150)] == [f"message {n}" for n in range(150)]
        big = b"b" * (1024 * 1024)  # a 1 MiB frame, as an upload might send
        await ws.send(big)
        assert await recv(ws) == big
    assert set(stats.as_dict().values()) == {0}
