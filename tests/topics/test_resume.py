"""Resume on join: what ``read_missed`` replays, and no duplicate when a broadcast races the
join (sent after the socket joined the group but before it read the log)."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from channelworks.layers import InMemoryChannelLayer
from channelworks.layers.history import HistoryOptions, StreamPosition
from channelworks.testing import WebsocketCommunicator
from channelworks.topics import Topic, TopicsConsumer, abroadcast, group_for
from channelworks.topics.resume import read_missed
from tests.topics.apps import Room

OPTIONS = HistoryOptions(size=3, ttl=60)


async def sent(layer: InMemoryChannelLayer, group: str, n: int) -> StreamPosition:
    position = None
    for i in range(n):
        position = await layer.group_send(group, {"type": "t", "i": i}, history=True)
    assert position is not None
    return position


async def test_a_first_join_replays_nothing_and_starts_at_the_log_s_position(
    layer: InMemoryChannelLayer,
) -> None:
    top = await sent(layer, "g", 2)
    resumed, missed = await read_missed(layer, "g", OPTIONS, None)
    assert (resumed.recovered, resumed.position, missed) == (True, top, [])


async def test_a_join_with_since_replays_what_followed_it_in_order(
    layer: InMemoryChannelLayer,
) -> None:
    top = await sent(layer, "g", 3)
    since = [top.offset - 2, top.epoch]
    resumed, missed = await read_missed(layer, "g", OPTIONS, since)
    assert (resumed.recovered, resumed.position, resumed.missed) == (True, top, 2)
    assert [m["i"] for m in missed] == [1, 2]


@pytest.mark.parametrize(
    "since",
    [
        "garbage",
        [1, "another-epoch"],
        [0, None],  # malformed
    ],
)
async def test_a_position_that_cannot_be_continued_is_not_recovered(
    layer: InMemoryChannelLayer, since: Any
) -> None:
    top = await sent(layer, "g", 2)
    resumed, missed = await read_missed(layer, "g", OPTIONS, since)
    assert (resumed.recovered, resumed.position, missed) == (False, top, [])


async def test_more_missed_than_the_topic_keeps_is_not_recovered(
    layer: InMemoryChannelLayer,
) -> None:
    first = await sent(layer, "g", 1)
    await sent(layer, "g", 4)  # 4 > size 3
    resumed, missed = await read_missed(layer, "g", OPTIONS, list(first))
    assert (resumed.recovered, missed) == (False, [])


async def test_a_broadcast_racing_the_join_reaches_the_client_once(
    layer: InMemoryChannelLayer, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = TopicsConsumer.as_asgi(topics=[Room], heartbeat_interval=None)
    before = await abroadcast("room:race", "said", {"n": 1}, layer=layer)
    assert before is not None
    history = layer.history

    async def racing(group: str, **kwargs: Any) -> Any:
        if group == group_for("room:race") and kwargs.get("since") is not None:
            await abroadcast("room:race", "said", {"n": 2}, layer=layer)  # live AND in the log
        return await history(group, **kwargs)

    monkeypatch.setattr(layer, "history", racing)
    client = WebsocketCommunicator(app, "/", subprotocols=["channelworks.v1"])
    assert (await client.connect())[0]
    join = {"since": list(before)}
    await client.send_to(text_data=json.dumps(["1", "1", "room:race", "join", join]))
    frames = []
    while not await client.receive_nothing(0.2):
        frames.append(json.loads(await client.receive_from()))
    await abroadcast("room:race", "said", {"n": 3}, layer=layer)
    frames.append(json.loads(await client.receive_from()))
    await client.disconnect()
    reply = frames[0]
    assert reply[4]["response"]["missed"] == 1
    said = [f[4]["n"] for f in frames if f[3] == "said"]
    assert said == [2, 3]  # 2 once (replayed; its live copy dropped), then live 3
    positions = [f[5][0] for f in frames if f[3] == "said"]
    assert positions == [before.offset + 1, before.offset + 2]


async def test_the_first_broadcast_discovers_the_topics_modules_of_installed_apps(
    layer: InMemoryChannelLayer, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = sys.modules["channelworks.topics.broadcast"]  # the package's name is the function

    asked: list[str] = []

    def discover(name: str) -> None:  # what importing an app's topics.py does
        asked.append(name)

        class Discovered(Topic):
            pattern = "discovered:{x}"
            history = {"size": 5, "ttl": 5}

    monkeypatch.setattr(module, "_discovered", False)
    monkeypatch.setattr("django.utils.module_loading.autodiscover_modules", discover)
    position = await abroadcast("discovered:1", "e", {}, layer=layer)
    assert asked == ["topics"]
    assert position is not None  # the discovered class keeps history
    await abroadcast("discovered:1", "e", {}, layer=layer)
    assert asked == ["topics"]  # once per process
