"""Topics in the operators' view: joins and refusals counted, each socket's topics listed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from channelworks.client import JoinError, Socket
from channelworks.layers import InMemoryChannelLayer, channel_layers
from channelworks.metrics import render
from channelworks.ops import control
from channelworks.ops.topics import MAX_REASONS, OTHER, TopicCounts
from channelworks.topics import TopicsConsumer
from tests.ops.exposition import value
from tests.server.live import TIMEOUT, LiveServer, Uvicorn
from tests.topics.apps import Plain, Room


@pytest.fixture
def layer() -> Iterator[InMemoryChannelLayer]:
    layer = InMemoryChannelLayer()
    channel_layers.configure({})
    channel_layers.set("default", layer)
    yield layer
    channel_layers.configure(None)


@pytest.fixture
async def live(layer: InMemoryChannelLayer) -> AsyncIterator[LiveServer]:
    server = Uvicorn(TopicsConsumer.as_asgi(topics=[Room, Plain]))
    yield await server.start()
    await server.stop()


async def test_joins_refusals_and_each_sockets_topics(
    live: LiveServer, layer: InMemoryChannelLayer
) -> None:
    socket = Socket(live.ws("/"), push_timeout=TIMEOUT)
    await socket.connect()
    try:
        await socket.topic("room:lobby").join()
        await socket.topic("plain:b").join()
        with pytest.raises(JoinError):
            await socket.topic("room:vip").join()
        with pytest.raises(JoinError):
            await socket.topic("nowhere:x").join()
        [process] = await control.gather(layer, timeout=0.3)
        [row] = process["connections"]
        assert sorted(row["topics"]) == ["plain:b", "room:lobby"]
        text = render()
        joined = {"outcome": "joined"}
        assert (
            value(
                text,
                "channelworks_topic_joins_total",
                pattern="room:{slug}",
                reason="recovered",
                **joined,
            )
            + value(
                text,
                "channelworks_topic_joins_total",
                pattern="room:{slug}",
                reason="not_recovered",
                **joined,
            )
            == 1
        )
        assert (
            value(
                text,
                "channelworks_topic_joins_total",
                pattern="plain:{name}",
                reason="no_history",
                **joined,
            )
            == 1
        )
        refused = {"outcome": "refused"}
        assert (
            value(
                text,
                "channelworks_topic_joins_total",
                pattern="room:{slug}",
                reason="wrong_password",
                **refused,
            )
            == 1
        )
        assert (
            value(
                text,
                "channelworks_topic_joins_total",
                pattern="unknown",
                reason="unknown_topic",
                **refused,
            )
            == 1
        )
    finally:
        await socket.close()


def test_reasons_the_application_makes_up_cannot_grow_the_labels() -> None:
    # JoinRefused(f"banned until {date}") or kick(reason=...) made a label value per reason
    counts = TopicCounts()
    for index in range(MAX_REASONS + 30):
        counts.refused("room:{slug}", "room:a", f"banned until day {index}")
        counts.left("room:{slug}", "room:a", f"kicked by moderator {index}")
    counts.refused("room:{slug}", "room:a", "banned until day 0")  # a known one keeps its own
    refused = {reason: n for (_, _, reason), n in counts.joins.items()}
    assert len(refused) == MAX_REASONS + 1
    assert (refused[OTHER], refused["banned until day 0"]) == (30, 2)
    left = {reason: n for (_, reason), n in counts.leaves.items()}
    assert len(left) == MAX_REASONS + 1
    assert left[OTHER] == 30
