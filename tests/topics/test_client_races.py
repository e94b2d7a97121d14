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
