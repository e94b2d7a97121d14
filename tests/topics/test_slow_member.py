"""A member of a topic that stops reading is closed with 1013 (docs/limits.md) while the
other members of the topic get every broadcast, and the topic forgets it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets

from websockets.exceptions import ConnectionClosed

from channelworks.layers import InMemoryChannelLayer
from channelworks.limits import stats
from channelworks.topics import TopicsConsumer, abroadcast, group_for
from tests.server.live import TIMEOUT, recv_text, ws_connect
from tests.topics.apps import Plain
from tests.topics.conftest import Serve


class Endpoint(TopicsConsumer):
    topics = (Plain,)
    limits = {"send_timeout": 0.5, "close_wait": TIMEOUT}


async def joined(ws: object) -> None:
    await ws.send(json.dumps(["1", "1", "plain:feed", "join", {}]))  # type: ignore[attr-defined]
    assert json.loads(await recv_text(ws))[4]["status"] == "ok"  # type: ignore[arg-type]


async def test_a_member_that_stops_reading_is_closed_1013_and_the_others_get_everything(
    serve: Serve, layer: InMemoryChannelLayer
) -> None:
    stats.reset()
    live = await serve(Endpoint.as_asgi())
    body = secrets.token_urlsafe(65536)  # incompressible enough: the client may deflate
    async with (
        ws_connect(live.ws("/"), ["channelworks.v1"]) as fast,
        ws_connect(live.ws("/"), ["channelworks.v1"]) as slow,
    ):
        await joined(fast)
        await joined(slow)
        slow.transport.pause_reading()
        sent = 0
        async with asyncio.timeout(TIMEOUT * 3):
            while stats.slow_closed == 0 or sent < 50:
                sent += 1
                await abroadcast("plain:feed", "tick", {"n": sent, "body": body}, layer=layer)
                frame = json.loads(await recv_text(fast))
                assert frame[3:5] == ["tick", {"n": sent, "body": body}]  # each, in order
        assert stats.slow_closed == 1
        slow.transport.resume_reading()
        with contextlib.suppress(ConnectionClosed):
            async with asyncio.timeout(TIMEOUT):
                while True:
                    await slow.recv()  # what the server had taken before it gave up
        assert (slow.close_code, slow.close_reason) == (1013, "client too slow")
        assert len(layer.members(group_for("plain:feed"))) == 1  # it left the topic's group
