"""The Python client against a real server when replies are late: a leave while the join is
on its way, a join that timed out on a connection that stays up."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from channelworks.client import JoinError, PushTimeout, Socket
from channelworks.layers import InMemoryChannelLayer
from channelworks.topics import Topic, TopicsConsumer, group_for
from tests.server.live import TIMEOUT
from tests.topics.conftest import Serve

#: seconds the next joins of ``Slow`` take (set per test)
delays: list[float] = []


class Slow(Topic):
    pattern = "slow:{x}"
    presence = True

    async def join(self, params: dict[str, Any]) -> None:
        await asyncio.sleep(delays.pop(0) if delays else 0)
        await self.track("me", {})


APP = TopicsConsumer.as_asgi(topics=[Slow])


async def test_a_leave_while_the_join_is_on_its_way_leaves_it_on_the_server(
    serve: Serve, layer: InMemoryChannelLayer
) -> None:
    delays[:] = [0.3]
    live = await serve(APP)
    async with Socket(live.ws("/"), push_timeout=TIMEOUT) as socket:
        topic = socket.topic("slow:a")
        joining = asyncio.create_task(topic.join())
        await asyncio.sleep(0.1)  # the join is on the server, in its join hook
        await topic.leave()
        with pytest.raises(JoinError, match="left"):
            await joining
        assert topic.state == "left"
        await asyncio.sleep(0.5)  # the server finished the join, then the leave
        assert layer.members(group_for("slow:a")) == []
        assert await layer.presence(group_for("slow:a")) == {}


async def test_a_join_that_timed_out_is_retried_while_the_connection_stays_up(
    serve: Serve,
) -> None:
    delays[:] = [1.0]
    live = await serve(APP)
    async with Socket(
        live.ws("/"), push_timeout=TIMEOUT, backoff_base=0.05, backoff_max=0.2
    ) as socket:
        topic = socket.topic("slow:b")
        with pytest.raises(PushTimeout):
            await topic.join(timeout=0.2)
        await topic.wait_joined(TIMEOUT)  # retried on this connection, no reconnect needed
        assert socket.connections == 1
        assert topic.state == "joined"


async def closes_with_4400(scope: Any, receive: Any, send: Any) -> None:
    """Accepts, stays open a moment, then closes with 4400 (a client that keeps sending a
    bad frame sees this again and again)."""
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept", "subprotocol": "channelworks.v1"})
    await asyncio.sleep(0.1)
    await send({"type": "websocket.close", "code": 4400, "reason": "bad frame"})


async def test_the_backoff_is_not_reset_after_a_protocol_error(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[int] = []

    def recorded(attempt: int, base: float, cap: float) -> float:
        attempts.append(attempt)
        return 0.0

    monkeypatch.setattr("channelworks.client.socket.full_jitter", recorded)
    live = await serve(closes_with_4400)
    # Each connection stays open longer than backoff_max, which resets the backoff after
    # any other close; after 4400 it grows (docs/protocol.md, close codes).
    socket = Socket(live.ws("/"), backoff_base=0.01, backoff_max=0.05, heartbeat_interval=None)
    await socket.connect()
    async with asyncio.timeout(TIMEOUT):
        while len(attempts) < 3:  # noqa: ASYNC110 - the reconnects are the client's own
            await asyncio.sleep(0.02)
    await socket.close()
    assert attempts[:3] == [0, 1, 2]


async def test_a_leave_after_a_join_timed_out_leaves_the_late_join_on_the_server(
    serve: Serve, layer: InMemoryChannelLayer
) -> None:
    delays[:] = [0.4]
    live = await serve(APP)
    async with Socket(live.ws("/"), push_timeout=TIMEOUT) as socket:
        topic = socket.topic("slow:c")
        with pytest.raises(PushTimeout):
            await topic.join(timeout=0.1)
        await topic.leave()  # the server is still in the join hook
        await asyncio.sleep(0.8)  # it finished the join, then the leave
        assert layer.members(group_for("slow:c")) == []
        assert await layer.presence(group_for("slow:c")) == {}
        assert topic.state == "left"
