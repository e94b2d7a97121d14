"""Processes answer ops.status through the layer; an operator's close reaches the socket."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Iterator

import pytest
from django.urls import path

from channelworks.layers import InMemoryChannelLayer, channel_layers
from channelworks.ops import control
from channelworks.ops.snapshot import MAX_PATH
from channelworks.routing import URLRouter
from channelworks.testing import WebsocketCommunicator
from tests.ops.test_metrics import Echo

app = URLRouter([path("room/<str:name>/", Echo.as_asgi(), name="room")])


@pytest.fixture
def layer() -> Iterator[InMemoryChannelLayer]:
    layer = InMemoryChannelLayer()
    channel_layers.configure({})
    channel_layers.set("default", layer)
    yield layer
    channel_layers.configure(None)


async def test_status_lists_connections_groups_and_counters(layer: InMemoryChannelLayer) -> None:
    one = WebsocketCommunicator(app, "/room/a/")
    two = WebsocketCommunicator(app, "/room/b/")
    await one.connect()
    await two.connect()
    await one.send_to(text_data="hi")
    await one.receive_from()
    [process] = await control.gather(layer, timeout=0.3)
    assert process["connections_total"] == 2
    rows = {row["path"]: row for row in process["connections"]}
    assert rows["/room/a/"]["frames_in"] == rows["/room/a/"]["frames_out"] == 1
    assert rows["/room/b/"]["frames_in"] == 0
    assert rows["/room/a/"]["route"] == "room"
    assert rows["/room/a/"]["groups"] == ["room"]
    assert rows["/room/a/"]["accepted"] is True
    assert rows["/room/a/"]["channel_name"] != rows["/room/b/"]["channel_name"]
    assert process["groups"] == {"room": 2}
    assert process["layers"]["default"]["group_full"] == 0
    assert "rate_closed" in process["limits"]
    await one.disconnect()
    [process] = await control.gather(layer, timeout=0.3)
    assert [row["path"] for row in process["connections"]] == ["/room/b/"]
    await two.disconnect()


async def test_operator_close_is_final_and_audited(
    layer: InMemoryChannelLayer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    ws = WebsocketCommunicator(app, "/room/a/")
    await ws.connect()
    [process] = await control.gather(layer, timeout=0.3)
    [row] = process["connections"]
    await control.close(layer, row["channel_name"], by="admin", connection_id=row["id"])
    closed = await ws.receive_output()
    assert closed == {"type": "websocket.close", "code": 4403, "reason": "closed by an operator"}
    await ws.disconnect(4403)
    [audit] = [r for r in caplog.records if r.name == "channelworks.ops.audit"]
    assert f"by=admin connection_id={row['id']}" in audit.getMessage()
    assert "code=4403" in audit.getMessage()
    [process] = await control.gather(layer, timeout=0.3)
    assert process["connections"] == []


@pytest.mark.parametrize(("code", "sent"), [(4000, 4000), (1000, 1000), (1011, 4403), ("x", 4403)])
async def test_operator_close_codes(layer: InMemoryChannelLayer, code: object, sent: int) -> None:
    ws = WebsocketCommunicator(app, "/room/a/")
    await ws.connect()
    [process] = await control.gather(layer, timeout=0.3)
    [row] = process["connections"]
    close = {"type": "channelworks.admin_close", "channel": row["channel_name"], "code": code}
    await layer.send(row["channel_name"], close)
    assert (await ws.receive_output())["code"] == sent
    await ws.disconnect(sent)


async def test_an_admin_close_through_a_group_is_ignored(
    layer: InMemoryChannelLayer, caplog: pytest.LogCaptureFixture
) -> None:
    # A site forwarding client JSON into group_send must not let a client close the room
    # with a code its members treat as final.
    ws = WebsocketCommunicator(app, "/room/a/")
    await ws.connect()
    for forged in ({}, {"channel": "specific.other!1"}):
        await layer.group_send("room", {"type": "channelworks.admin_close", **forged})
    await layer.group_send("room", {"type": "chat.message", "text": "still open"})
    assert await ws.receive_from() == "still open"
    assert any("Ignored" in r.getMessage() for r in caplog.records)
    await ws.disconnect()


@pytest.mark.services
async def test_the_control_channel_ends_quietly_when_its_layer_closes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from channelworks.layers.redis import RedisChannelLayer
    from tests.layers.backends import REDIS_URL, redis_reachable, require_service

    require_service("Redis", redis_reachable())
    redis = RedisChannelLayer(hosts=[REDIS_URL], prefix=f"test-ops-{secrets.token_hex(4)}")
    control.ensure_service(redis)
    task = control._services[redis]
    for _ in range(20):  # it answers once it has joined the group: then it is serving
        found = await control.gather(redis, timeout=0.25)
        if found:
            break
    assert [process["connections"] for process in found] == [[]]
    await redis.close()
    async with asyncio.timeout(5):
        await asyncio.wait([task])
    assert not [r for r in caplog.records if r.name == "channelworks.ops"]


async def test_a_snapshot_over_the_message_size_still_answers(layer: InMemoryChannelLayer) -> None:
    # Clients choose their paths: 30 sockets with 4 KB paths made the snapshot larger than a
    # layer message may be, the answer failed (logged at INFO) and the process vanished from
    # the admin page and `channelworks status`, as if it served nobody.
    small = InMemoryChannelLayer(max_message_size=64 * 1024)
    sockets = [WebsocketCommunicator(app, f"/room/{'x' * 4000}{n}/") for n in range(30)]
    for ws in sockets:
        await ws.connect()
    reply_to = await small.new_channel()
    try:
        await control._answer(small, {"type": "ops.status", "reply_to": reply_to, "limit": 500})
        answer = small.receive_nowait(reply_to)
        assert answer is not None
        process = answer["snapshot"]
        assert process["connections_total"] == 30
        rows = process["connections"]
        assert rows
        assert all(len(row["path"]) <= MAX_PATH for row in rows)
        # more than fits: fewer listed, the total still says how many there are
        for ws in [WebsocketCommunicator(app, f"/room/{n}/") for n in range(400)]:
            await ws.connect()
            sockets.append(ws)
        await control._answer(small, {"type": "ops.status", "reply_to": reply_to, "limit": 500})
        answer = small.receive_nowait(reply_to)
        assert answer is not None
        assert answer["snapshot"]["connections_total"] == 430
        assert 0 < len(answer["snapshot"]["connections"]) < 430
    finally:
        for ws in sockets:
            await ws.disconnect()
