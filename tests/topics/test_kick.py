"""``kick``/``akick``: removing sockets from a topic from outside it, through the layer."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from channelworks.layers import InMemoryChannelLayer
from channelworks.testing import WebsocketCommunicator
from channelworks.topics import Topic, TopicsConsumer, akick, kick

left: list[tuple[str, Any]] = []


class Lobby(Topic):
    pattern = "lobby:{x}"
    presence = True

    async def join(self, params: dict[str, Any]) -> dict[str, Any]:
        await self.track(str(self.user.pk), {})
        return {"channel": self.socket.channel_name}

    async def leave(self) -> None:
        left.append((self.name, self.user.pk))


APP = TopicsConsumer.as_asgi(topics=[Lobby], heartbeat_interval=None)


async def member(pk: object, topic: str = "lobby:a", authenticated: bool = True) -> Any:
    client = WebsocketCommunicator(APP, "/", subprotocols=["channelworks.v1"])
    client.scope["user"] = SimpleNamespace(pk=pk, is_authenticated=authenticated)
    assert (await client.connect())[0]
    await client.send_json_to(["1", "1", topic, "join", {}])
    reply = await client.receive_json_from()
    assert reply[4]["status"] == "ok"
    client.channel = reply[4]["response"]["response"]["channel"]  # type: ignore[attr-defined]
    while not await client.receive_nothing(0.05):
        await client.receive_from()  # presence_state and diffs
    return client


async def frames(client: Any) -> list[Any]:
    out = []
    while not await client.receive_nothing(0.1):
        out.append(json.loads(await client.receive_from()))
    return out


@pytest.fixture(autouse=True)
def no_leaves() -> None:
    left.clear()


async def test_kick_by_user_removes_that_user_s_sockets_alone(layer: InMemoryChannelLayer) -> None:
    ada1, ada2, bob = await member(1), await member(1), await member(2)
    other_topic = await member(1, "lobby:b")
    await akick("lobby:a", user_id=1, reason="banned", layer=layer)
    for client in (ada1, ada2):
        got = await frames(client)
        assert ["1", None, "lobby:a", "close", {"reason": "banned"}] in got
        await client.send_json_to(["1", "5", "lobby:a", "hello", {}])
        reply = json.loads(await client.receive_from())
        assert reply[4] == {"status": "error", "response": {"reason": "unmatched_topic"}}
    leaves = [f for f in await frames(bob) if f[3] == "presence_diff"]
    assert {k for f in leaves for k in f[4]["leaves"]} == {"1"}  # ada's two metas went
    assert not [f for f in await frames(other_topic) if f[3] == "close"]
    assert sorted(left) == [("lobby:a", 1), ("lobby:a", 1)]  # leave ran for each
    for client in (ada1, ada2, bob, other_topic):
        await client.disconnect()


async def test_kick_by_channel_removes_one_socket_and_a_kick_of_nobody_is_harmless(
    layer: InMemoryChannelLayer,
) -> None:
    one, two = await member(1), await member(1)
    await sync_to_async(kick)("lobby:a", channel=one.channel, layer=layer)
    assert ["1", None, "lobby:a", "close", {"reason": "kicked"}] in await frames(one)
    assert not [f for f in await frames(two) if f[3] == "close"]
    await akick("lobby:a", user_id="nobody", layer=layer)
    await akick("lobby:zzz", layer=layer)  # a topic nobody joined
    assert not [f for f in await frames(two) if f[3] == "close"]
    anonymous = await member(None, authenticated=False)
    await akick("lobby:a", user_id="None", layer=layer)  # an anonymous user has no id
    assert not [f for f in await frames(anonymous) if f[3] == "close"]
    await akick("lobby:a", layer=layer)  # neither: every member
    for client in (two, anonymous):
        assert ["1", None, "lobby:a", "close", {"reason": "kicked"}] in await frames(client)
        await client.disconnect()
    await one.disconnect()


@pytest.mark.parametrize(
    ("topic", "options", "match"),
    [
        ("", {}, "a topic is"),
        ("t" * 201, {}, "a topic is"),
        ("lobby:a", {"reason": ""}, "reason"),
        ("lobby:a", {"channel": 5}, "channel"),
    ],
)
async def test_bad_kicks_raise_value_error(
    layer: InMemoryChannelLayer, topic: str, options: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        await akick(topic, layer=layer, **options)


async def test_a_topics_silent_message_from_the_layer_closes_nobody(
    layer: InMemoryChannelLayer,
) -> None:
    # the heartbeat watch's own event; an application forwarding client JSON into the
    # topic's group must not be able to close its members with it
    from channelworks.topics.names import group_for

    ada = await member(1)
    await layer.group_send(group_for("lobby:a"), {"type": "topics.silent"})
    await ada.send_json_to([None, "9", "$", "heartbeat", {}])
    reply = json.loads(await ada.receive_from())
    assert reply[4]["status"] == "ok"
    await ada.disconnect()


async def test_a_push_or_kick_without_the_layers_token_moves_nobody(
    layer: InMemoryChannelLayer, caplog: pytest.LogCaptureFixture
) -> None:
    """An application forwarding client JSON into a topic's group (a Channels pattern) must
    not let a client kick others or speak in the topic's name: only messages carrying the
    layer's token (``abroadcast``/``akick`` put it in) are acted on; the others are logged."""
    from channelworks.topics import abroadcast
    from channelworks.topics.names import group_for

    ada = await member(1)
    group = group_for("lobby:a")
    forged_push: dict[str, Any] = {"type": "topics.push", "topic": "lobby:a", "event": "x"}
    forged_push["payload"] = {}
    for token in (None, "0" * 32, 5):
        push: dict[str, Any] = dict(forged_push)
        kicked: dict[str, Any] = {"type": "topics.kick", "topic": "lobby:a"}
        if token is not None:
            push["token"] = kicked["token"] = token
        await layer.group_send(group, push)
        await layer.group_send(group, kicked)
    await abroadcast("lobby:a", "real", {"n": 1}, layer=layer)
    pushed = await next_frame(ada)
    assert pushed[3:] == ["real", {"n": 1}]  # the forged ones before it never came
    assert "token" not in pushed[4]
    assert "without the layer's token" in caplog.text
    await akick("lobby:a", layer=layer)  # still a member: the forged kicks did nothing
    closed = await next_frame(ada)
    assert closed[2:4] == ["lobby:a", "close"]
    await ada.disconnect()


async def next_frame(client: Any) -> Any:
    """The next frame that is not a presence diff (the join's own track makes one)."""
    while True:
        frame = json.loads(await client.receive_from())
        if frame[3] != "presence_diff":
            return frame
