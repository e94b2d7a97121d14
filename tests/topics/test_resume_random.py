"""Resume under concurrent broadcasts, randomised: members that drop and rejoin with
``since`` at arbitrary moments while a topic is broadcast to get every message exactly once,
in order (the in-memory layer, many interleavings)."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import pytest

from channelworks.layers import channel_layers
from channelworks.testing import WebsocketCommunicator
from channelworks.topics import Topic, TopicsConsumer, abroadcast

MESSAGES = 300


class Feed(Topic):
    pattern = "feed:{x}"
    history = {"size": MESSAGES + 10, "ttl": 60}


APP = TopicsConsumer.as_asgi(topics=[Feed], heartbeat_interval=None)


async def member(rng: random.Random, got: list[int], done: asyncio.Event) -> None:
    """Join, read some pushes, drop the connection, rejoin from the last position; again."""
    since: list[Any] | None = None
    while True:
        client = WebsocketCommunicator(APP, "/", subprotocols=["channelworks.v1"])
        assert (await client.connect())[0]
        join: dict[str, Any] = {} if since is None else {"since": since}
        await client.send_json_to(["1", "1", "feed:a", "join", join])
        reply = json.loads(await client.receive_from(5))
        assert reply[4]["response"]["recovered"] is True
        if since is None:
            since = reply[4]["response"]["position"]
            got.append(since[0])  # where this member starts: nothing before counts
        for _ in range(rng.randint(0, 40)):
            if done.is_set() and await client.receive_nothing(0.05):
                await client.disconnect()
                return
            frame = json.loads(await client.receive_from(5))
            got.append(frame[5][0])
            since = frame[5]
            if rng.random() < 0.3:
                await asyncio.sleep(0)  # let the broadcaster and the others run
        await client.disconnect()


@pytest.mark.parametrize("seed", range(8))
async def test_members_that_rejoin_at_random_moments_get_each_message_once_in_order(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel_layers.configure(
        {
            "default": {
                "BACKEND": "channelworks.layers.InMemoryChannelLayer",
                "CONFIG": {"capacity": 10 * MESSAGES},
            }
        }
    )
    rng = random.Random(seed)
    layer: Any = channel_layers["default"]
    history = layer.history

    async def slow_history(group: str, **options: Any) -> Any:
        # A networked layer's round trip: broadcasts land between the join's group_add
        # and its read of the log, which is the race the resume filter is for.
        for _ in range(rng.randint(0, 4)):
            await asyncio.sleep(0)
        return await history(group, **options)

    monkeypatch.setattr(layer, "history", slow_history)
    done = asyncio.Event()
    received: list[list[int]] = [[] for _ in range(4)]
    members = [
        asyncio.create_task(member(random.Random(rng.random()), got, done)) for got in received
    ]
    last = None
    for _ in range(MESSAGES):
        last = await abroadcast("feed:a", "tick", {})
        for _ in range(rng.randint(0, 3)):
            await asyncio.sleep(0)
    done.set()
    async with asyncio.timeout(30):
        await asyncio.gather(*members)
    assert last is not None
    for got in received:
        start, offsets = got[0], got[1:]
        assert offsets == list(range(start + 1, last.offset + 1))
