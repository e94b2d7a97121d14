"""GroupResume: a client reconnecting with its last position gets what it missed, in order,
then live messages, with no gap and no duplicate; or ``recovered: false``. Run on the
in-memory and Redis layers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from channelworks import DEFAULT_CHANNEL_LAYER
from channelworks.consumers import AsyncJsonWebsocketConsumer
from channelworks.consumers.resume import GroupResume
from channelworks.layers import BaseChannelLayer, channel_layers
from channelworks.layers.history import POSITION_KEY, StreamPosition
from channelworks.testing import WebsocketCommunicator
from tests.layers.backends import BACKENDS

ROOM = "chat.room"


class Room(GroupResume, AsyncJsonWebsocketConsumer):
    """The client sends {"since": position or null}; chat messages carry their position."""

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        resumed = await self.resume_group(ROOM, since=content.get("since"))
        await self.send_json({"kind": "resumed", **resumed.as_dict()})

    async def chat_message(self, event: dict[str, Any]) -> None:
        await self.send_json({"kind": "chat", "n": event["n"], "position": event[POSITION_KEY]})


@pytest.fixture(params=["memory", "redis"])
async def layer(request: pytest.FixtureRequest) -> AsyncIterator[BaseChannelLayer]:
    made = BACKENDS[request.param](history={"chat.*": {"size": 50, "ttl": 60}})
    previous = channel_layers.set(DEFAULT_CHANNEL_LAYER, made)
    try:
        yield made
    finally:
        if previous is None:
            channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)
        else:
            channel_layers.set(DEFAULT_CHANNEL_LAYER, previous)
        await made.flush()
        await made.close()


async def connect() -> WebsocketCommunicator:
    client = WebsocketCommunicator(Room.as_asgi(), "/")
    assert (await client.connect())[0]
    return client


async def say(layer: BaseChannelLayer, n: int) -> StreamPosition:
    position = await layer.group_send(ROOM, {"type": "chat.message", "n": n})
    assert position is not None
    return position


def numbers(frames: list[dict[str, Any]]) -> Iterator[int]:
    return (frame["n"] for frame in frames if frame["kind"] == "chat")


async def test_reconnect_gets_missed_then_live_without_gap_or_duplicate(
    layer: BaseChannelLayer,
) -> None:
    first = await connect()
    await first.send_json_to({"since": None})
    hello = await first.receive_json_from()
    assert hello["recovered"] is True
    for n in range(3):
        await say(layer, n)
    seen = [await first.receive_json_from() for _ in range(3)]
    last = seen[-1]["position"]
    await first.disconnect()

    for n in range(3, 8):  # missed while away
        await say(layer, n)
    second = await connect()
    await second.send_json_to({"since": last})
    # sent while the resume runs: after the join, maybe before the history read, so it may
    # reach the consumer both ways; it must be seen once
    await say(layer, 8)
    frames = [await second.receive_json_from() for _ in range(7)]
    assert list(numbers(frames)) == [3, 4, 5, 6, 7, 8]
    resumed = next(frame for frame in frames if frame["kind"] == "resumed")
    assert resumed["recovered"] is True
    await say(layer, 9)
    assert (await second.receive_json_from())["n"] == 9
    assert await second.receive_nothing(0.2)
    await second.disconnect()


async def test_duplicates_of_resumed_messages_are_dropped_by_offset(
    layer: BaseChannelLayer,
) -> None:
    # The race made certain: the member is in the group while the messages are sent, so each
    # one waits in its channel as a live copy and is in the history the resume reads.
    client = await connect()
    await client.send_json_to({"since": None})
    start = (await client.receive_json_from())["position"]
    await client.disconnect()
    channel = await layer.new_channel()
    await layer.group_add(ROOM, channel)
    for n in range(4):
        await say(layer, n)
    consumer = GroupResumeProbe()
    consumer.channel_layer, consumer.channel_name = layer, channel
    resumed = await consumer.resume_group(ROOM, since=start)
    assert resumed.recovered
    assert resumed.missed == 4
    for _ in range(4):  # the live copies
        await consumer.dispatch(await layer.receive(channel))
    await say(layer, 4)
    await consumer.dispatch(await layer.receive(channel))
    assert consumer.got == [0, 1, 2, 3, 4]


class GroupResumeProbe(GroupResume):
    """A bare consumer driven by hand: records the chat messages it dispatches."""

    def __init__(self) -> None:
        super().__init__()
        self.got: list[int] = []

    async def chat_message(self, event: dict[str, Any]) -> None:
        self.got.append(event["n"])


async def test_a_first_visit_drops_live_copies_at_or_before_its_position(
    layer: BaseChannelLayer,
) -> None:
    # Sent after the member joined the group and before its read of the log: in the log
    # before the position the first visit returns, and waiting as live copies.
    channel = await layer.new_channel()
    await layer.group_add(ROOM, channel)
    for n in range(2):
        await say(layer, n)
    consumer = GroupResumeProbe()
    consumer.channel_layer, consumer.channel_name = layer, channel
    resumed = await consumer.resume_group(ROOM, since=None)
    assert (resumed.recovered, resumed.missed) == (True, 0)
    for _ in range(2):
        await consumer.dispatch(await layer.receive(channel))
    await say(layer, 2)
    await consumer.dispatch(await layer.receive(channel))
    assert consumer.got == [2]  # 0 and 1 are before the position the client starts from


async def test_a_lost_log_says_recovered_false_and_dispatches_nothing(
    layer: BaseChannelLayer,
) -> None:
    await say(layer, 0)
    stale = [5, "an-epoch-long-gone"]
    client = await connect()
    await client.send_json_to({"since": stale})
    resumed = await client.receive_json_from()
    assert resumed["kind"] == "resumed"
    assert resumed["recovered"] is False
    assert resumed["position"][0] == 1
    await say(layer, 1)  # live messages still come
    assert (await client.receive_json_from())["n"] == 1
    await client.disconnect()


async def test_a_malformed_position_is_not_recovered(layer: BaseChannelLayer) -> None:
    client = await connect()
    await client.send_json_to({"since": "garbage"})
    assert (await client.receive_json_from())["recovered"] is False
    await client.disconnect()
