"""PresenceConfig on a consumer: tracked in its groups once accepted, untracked however it
ends; the client gets the state, then the diffs. Run on the in-memory and Redis layers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from channelworks import DEFAULT_CHANNEL_LAYER
from channelworks.consumers import (
    AsyncConsumer,
    AsyncJsonWebsocketConsumer,
    AsyncWebsocketConsumer,
    JsonWebsocketConsumer,
)
from channelworks.consumers.presence import PresenceConfig
from channelworks.layers import BaseChannelLayer, channel_layers
from channelworks.testing import WebsocketCommunicator
from channelworks.types import Message
from tests.layers.backends import BACKENDS
from tests.layers.test_contract_presence import until

ROOM = "room.lobby"


def user(consumer: Any) -> str:
    return str(consumer.scope["path"].strip("/"))


class Room(AsyncJsonWebsocketConsumer):
    groups = [ROOM]
    presence = PresenceConfig(key=user, meta=lambda consumer: {"name": user(consumer).title()})

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if content == "crash":
            raise RuntimeError("boom")


class SyncRoom(JsonWebsocketConsumer):
    groups = [ROOM]
    presence = PresenceConfig(key=user)


class RawRoom(AsyncWebsocketConsumer):
    groups = [ROOM]
    presence = PresenceConfig(key=7, meta={"kind": "raw"})


class Quiet(AsyncJsonWebsocketConsumer):
    """Does its own thing with the diffs; sends nothing on connect."""

    presence = PresenceConfig(key=user, groups=[ROOM], forward=False)

    async def presence_diff(self, message: Message) -> None:
        await self.send_json({"counted": sorted(message["joins"])})


@pytest.fixture(params=["memory", "redis"])
async def layer(request: pytest.FixtureRequest) -> AsyncIterator[BaseChannelLayer]:
    made = BACKENDS[request.param]()
    previous = channel_layers.set(DEFAULT_CHANNEL_LAYER, made)
    try:
        yield made
    finally:
        if previous is None:
            channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)
        else:
            channel_layers.set(DEFAULT_CHANNEL_LAYER, previous)
        await made.close()


async def absent(layer: BaseChannelLayer, key: str) -> bool:
    return key not in await layer.presence(ROOM)


async def connect(
    consumer: type[AsyncConsumer] = Room, path: str = "/alice"
) -> WebsocketCommunicator:
    client = WebsocketCommunicator(consumer.as_asgi(), path)
    assert (await client.connect(timeout=5))[0]
    return client


async def next_json(client: WebsocketCommunicator) -> Any:
    return await client.receive_json_from(timeout=5)


async def test_state_then_diffs_reach_the_client(layer: BaseChannelLayer) -> None:
    alice = await connect()
    state = await next_json(alice)
    assert (state["type"], state["group"]) == ("presence.state", ROOM)
    assert list(state["state"]) == ["alice"]
    assert state["state"]["alice"][0]["name"] == "Alice"
    # its own join, sent as a diff too (a client applies it by phx_ref: no change)
    own = await next_json(alice)
    assert (own["type"], list(own["joins"])) == ("presence.diff", ["alice"])
    bob = await connect(path="/bob")
    assert sorted((await next_json(bob))["state"]) == ["alice", "bob"]
    joined = await next_json(alice)
    assert joined == {
        "type": "presence.diff",
        "group": ROOM,
        "joins": {"bob": [joined["joins"]["bob"][0]]},
        "leaves": {},
    }
    await bob.disconnect()
    left = await next_json(alice)
    assert (list(left["leaves"]), left["joins"]) == (["bob"], {})
    assert list(await layer.presence(ROOM)) == ["alice"]
    await alice.disconnect()
    assert await layer.presence(ROOM) == {}


async def test_a_consumer_that_fails_or_is_cancelled_is_untracked(
    layer: BaseChannelLayer,
) -> None:
    crashing = await connect(path="/crash")
    cancelled = await connect(path="/gone")
    assert sorted(await layer.presence(ROOM)) == ["crash", "gone"]
    await crashing.send_json_to("crash")
    assert (await crashing.receive_output(timeout=5))["type"] in {
        "websocket.send",
        "websocket.close",
    }
    with pytest.raises(RuntimeError, match="boom"):
        await crashing.wait(timeout=5)
    await until(lambda: absent(layer, "crash"))
    cancelled.future.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled.future
    await until(lambda: absent(layer, "gone"))
    assert await layer.presence(ROOM) == {}


async def test_sync_and_raw_consumers_are_tracked_and_forward(layer: BaseChannelLayer) -> None:
    sync = await connect(SyncRoom, "/carol")
    assert list((await next_json(sync))["state"]) == ["carol"]
    raw = await connect(RawRoom, "/raw")
    state = json.loads(await raw.receive_from(timeout=5))
    assert state["state"]["7"][0]["kind"] == "raw"  # an int key is tracked as its str
    await sync.disconnect()
    await raw.disconnect()
    assert await layer.presence(ROOM) == {}


async def test_forward_off_and_an_own_handler(layer: BaseChannelLayer) -> None:
    quiet = await connect(Quiet, "/dave")  # joins ROOM for its presence though it has no groups
    assert await next_json(quiet) == {"counted": ["dave"]}  # no state first: its own diff
    bob = await connect(path="/bob")
    assert await next_json(quiet) == {"counted": ["bob"]}
    await bob.disconnect()
    await quiet.disconnect()
    assert await layer.presence(ROOM) == {}


class Forwarding(Room):
    """Forwards client JSON into the room: the pattern a forged diff would ride on."""

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        await self.channel_layer.group_send(ROOM, content)  # type: ignore[union-attr]


async def test_a_forwarded_presence_diff_reaches_no_client(layer: BaseChannelLayer) -> None:
    alice = await connect(Forwarding)
    assert (await next_json(alice))["type"] == "presence.state"
    assert list((await next_json(alice))["joins"]) == ["alice"]
    made_up = {"type": "presence.diff", "group": ROOM, "joins": {"mallory": [{}]}, "leaves": {}}
    for token in ({}, {"token": "a guess"}, {"token": 7}):
        await alice.send_json_to({**made_up, **token})
    bob = await connect(path="/bob")  # a genuine diff, sent after the made-up ones
    joined = await next_json(alice)
    assert list(joined["joins"]) == ["bob"]
    assert "token" not in joined  # the layer's token never reaches a client
    await bob.disconnect()
    await alice.disconnect()
