"""WebSocket consumers behind a real uvicorn, driven by the real ``websockets`` client.

Every test runs once per uvicorn WebSocket implementation, since each turns the ASGI messages
into wire frames and handshake responses its own way.
"""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from django.urls import path
from websockets.exceptions import ConnectionClosed

from channelworks.consumers import AsyncWebsocketConsumer, WebsocketConsumer
from channelworks.layers import InMemoryChannelLayer
from channelworks.routing import ProtocolTypeRouter, URLRouter
from tests.server.apps.consumers import (
    AsyncCloseBeforeAccept,
    AsyncCloser,
    AsyncDeny,
    AsyncEcho,
    AsyncJsonEcho,
    Chat,
    Subprotocol,
    SyncCloseBeforeAccept,
    SyncCloser,
    SyncDeny,
    SyncEcho,
    SyncJsonEcho,
)
from tests.server.conftest import Serve
from tests.server.live import TIMEOUT, closed, recv, recv_text, refused_status, ws_connect

pytestmark = pytest.mark.parametrize(
    "serve",
    [
        "websockets-sansio",
        "wsproto",
        # uvicorn's legacy implementation on websockets' legacy API: both warn they are
        # deprecated, on import and while serving
        pytest.param(
            "websockets",
            marks=[
                pytest.mark.filterwarnings("ignore:The `websockets` implementation is deprecated"),
                pytest.mark.filterwarnings("ignore::DeprecationWarning"),
            ],
        ),
    ],
    indirect=True,
)


@pytest.mark.parametrize("consumer", [AsyncEcho, SyncEcho])
async def test_echo_text_and_binary(
    serve: Serve, consumer: type[AsyncWebsocketConsumer | WebsocketConsumer]
) -> None:
    live = await serve(consumer.as_asgi())
    async with ws_connect(live.ws("/")) as ws:
        await ws.send("hello")
        assert await recv(ws) == "hello"
        await ws.send(b"\x00\x01\xff")
        assert await recv(ws) == b"\x00\x01\xff"
        await ws.send("é ✓")
        assert await recv(ws) == "é ✓"


@pytest.mark.parametrize("consumer", [AsyncJsonEcho, SyncJsonEcho])
async def test_json_round_trip_and_bad_json_closes_only_that_socket(
    serve: Serve, consumer: type[AsyncJsonEcho | SyncJsonEcho]
) -> None:
    live = await serve(consumer.as_asgi())
    async with ws_connect(live.ws("/")) as good, ws_connect(live.ws("/")) as bad:
        document = {"n": [1, 2.5, None], "s": "é", "nested": {"ok": True}}
        await good.send(json.dumps(document))
        assert json.loads(await recv_text(good)) == {"echo": document}

        await bad.send("{not json")
        with pytest.raises(ConnectionClosed):
            await recv(bad)
        assert await closed(bad) == (1007, "invalid JSON")

        await good.send(json.dumps([1, 2]))
        assert json.loads(await recv_text(good)) == {"echo": [1, 2]}


async def test_group_broadcast_reaches_both_then_only_the_one_left(
    serve: Serve, layer: InMemoryChannelLayer
) -> None:
    live = await serve(Chat.as_asgi())
    async with ws_connect(live.ws("/")) as a:
        channel_a = (await recv_text(a)).removeprefix("channel:")
        async with ws_connect(live.ws("/")) as b:
            channel_b = (await recv_text(b)).removeprefix("channel:")
            assert channel_a != channel_b

            await a.send("first")
            assert await recv(a) == "first"
            assert await recv(b) == "first"
            await b.send("from b")
            assert await recv(a) == "from b"
            assert await recv(b) == "from b"

        # B's consumer left the group before its disconnect hook announced it.
        assert await recv(a) == f"left:{channel_b}"
        await a.send("second")
        assert await recv(a) == "second"
        # Delivery to a member is immediate, so B's channel would hold "second" by now.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(layer.receive(channel_b), 0.05)


@pytest.mark.parametrize("consumer", [AsyncCloser, SyncCloser])
async def test_consumer_close_code_reaches_client(
    serve: Serve, consumer: type[AsyncCloser | SyncCloser]
) -> None:
    live = await serve(consumer.as_asgi())
    async with ws_connect(live.ws("/")) as ws:
        await ws.send("ping")
        assert await recv(ws) == "ping"
        await ws.send("close")
        code, _ = await closed(ws)
        assert code == 4001


@pytest.mark.parametrize("consumer", [AsyncCloser, SyncCloser])
async def test_handler_error_closes_1011_and_server_keeps_serving(
    serve: Serve, consumer: type[AsyncCloser | SyncCloser], caplog: pytest.LogCaptureFixture
) -> None:
    live = await serve(consumer.as_asgi())
    async with ws_connect(live.ws("/")) as bystander:
        with caplog.at_level(logging.ERROR, logger="channelworks.consumers"):
            async with ws_connect(live.ws("/")) as ws:
                await ws.send("boom")
                code, _ = await closed(ws)
                assert code == 1011
        # one line of ours naming the consumer, then the error leaves the application and the
        # server logs its traceback (as with Channels)
        assert any(
            r.name == "channelworks.consumers" and consumer.__name__ in r.getMessage()
            for r in caplog.records
        ), caplog.text

        # the server logs it once the application has ended, after the client saw the close
        def traceback_logged() -> bool:
            return any(r.exc_info and "boom" in str(r.exc_info[1]) for r in caplog.records)

        async with asyncio.timeout(TIMEOUT):
            while not traceback_logged():  # noqa: ASYNC110 - a log record, not an event
                await asyncio.sleep(0.01)

        await bystander.send("still here")
        assert await recv(bystander) == "still here"
    async with ws_connect(live.ws("/")) as ws:
        await ws.send("new")
        assert await recv(ws) == "new"


@pytest.mark.parametrize(
    "consumer", [AsyncDeny, SyncDeny, AsyncCloseBeforeAccept, SyncCloseBeforeAccept]
)
async def test_refusing_in_connect_is_http_403(
    serve: Serve, consumer: type[AsyncWebsocketConsumer | WebsocketConsumer]
) -> None:
    live = await serve(consumer.as_asgi())
    assert await refused_status(live.ws("/")) == 403


async def test_unknown_path_is_403_and_server_keeps_serving(serve: Serve) -> None:
    app = ProtocolTypeRouter(
        {"websocket": URLRouter([path("ws/echo/", AsyncEcho.as_asgi())])},
    )
    live = await serve(app)
    assert await refused_status(live.ws("/ws/nowhere/")) == 403
    assert await refused_status(live.ws("/ws/echo/extra/")) == 403
    async with ws_connect(live.ws("/ws/echo/")) as ws:
        await ws.send("routed")
        assert await recv(ws) == "routed"


async def test_subprotocol_negotiated(serve: Serve) -> None:
    live = await serve(Subprotocol.as_asgi())
    async with ws_connect(live.ws("/"), subprotocols=["chat.v2"]) as ws:
        assert ws.subprotocol == "chat.v2"
        assert await recv(ws) == "chat.v2"
    async with ws_connect(live.ws("/"), subprotocols=["chat.v1", "chat.v2"]) as ws:
        assert ws.subprotocol == "chat.v2"
        assert await recv(ws) == "chat.v1,chat.v2"
    async with ws_connect(live.ws("/")) as ws:
        assert ws.subprotocol is None
        assert await recv(ws) == ""


async def test_slow_sync_handler_does_not_stall_other_connections(serve: Serve) -> None:
    live = await serve(SyncEcho.as_asgi())
    async with ws_connect(live.ws("/")) as slow, ws_connect(live.ws("/")) as fast:
        await slow.send("slow")
        assert await recv(slow) == "slow started"  # the handler is now in time.sleep(1)
        slow_reply = asyncio.create_task(recv(slow))
        try:
            await fast.send("fast")
            assert await recv(fast) == "fast"
            assert not slow_reply.done(), "the fast echo waited for the slow handler"
            assert await slow_reply == "slow done"
        finally:
            slow_reply.cancel()


async def test_oversized_frame_closes_1009_and_others_keep_working(serve: Serve) -> None:
    live = await serve(AsyncEcho.as_asgi(), ws_max_size=1024)
    async with ws_connect(live.ws("/")) as bystander:
        async with ws_connect(live.ws("/")) as ws:
            await ws.send("x" * 4096)
            code, _ = await closed(ws)
            assert code == 1009
        await bystander.send("still here")
        assert await recv(bystander) == "still here"
