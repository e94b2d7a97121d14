"""The Python client's topic, fed frames directly: presence sync, positions, stale joins."""

from __future__ import annotations

from typing import Any

import msgpack  # type: ignore[import-untyped]
import pytest

from channelworks.client.topic import Topic
from channelworks.topics.frames import Frame


def joined_topic() -> Topic:
    topic = Topic(None, "room:a")  # type: ignore[arg-type]  # no socket needed here
    topic.join_ref = "7"
    topic.state = "joined"
    return topic


def deep(levels: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(levels):
        value = [value]
    return value


def meta(ref: str) -> dict[str, Any]:
    return {"phx_ref": ref}


async def test_a_diff_before_the_state_is_applied_after_it() -> None:
    topic = joined_topic()
    diff = {"joins": {"bob": {"metas": [meta("b")]}}, "leaves": {"ada": {"metas": [meta("a")]}}}
    await topic._receive(Frame("7", None, "room:a", "presence_diff", diff))
    assert topic.presence == {}
    state = {"ada": {"metas": [meta("a")]}, "cy": {"metas": [meta("c")]}}
    await topic._receive(Frame("7", None, "room:a", "presence_state", state))
    assert topic.presence == {"bob": [meta("b")], "cy": [meta("c")]}


async def test_frames_of_an_earlier_join_are_dropped_and_positions_kept() -> None:
    topic = joined_topic()
    seen: list[dict[str, Any]] = []
    topic.on("said", seen.append)
    await topic._receive(Frame("6", None, "room:a", "said", {"old": True}, (1, "e")))
    await topic._receive(Frame("7", None, "room:a", "said", {"n": 2}, (2, "e")))
    assert seen == [{"n": 2}]
    assert topic.position == (2, "e")
    await topic._receive(Frame("7", None, "room:a", "said", {"n": 3}))  # a push: no position
    assert topic.position == (2, "e")


async def test_a_close_from_the_server_stops_the_topic_for_good() -> None:
    topic = joined_topic()
    topic._wanted = True
    everything: list[dict[str, Any]] = []
    topic.on("*", everything.append)
    await topic._receive(Frame("7", None, "room:a", "close", {"reason": "kicked"}))
    assert (topic.state, topic.close_reason, topic._wanted) == ("closed", "kicked", False)
    assert everything == [{"event": "close", "payload": {"reason": "kicked"}}]


async def test_a_push_at_or_before_the_position_is_a_replay_and_dropped() -> None:
    topic = joined_topic()
    topic.position = (5, "e")  # what the join reply said
    seen: list[dict[str, Any]] = []
    topic.on("said", seen.append)
    for offset in (4, 5, 6):
        await topic._receive(Frame("7", None, "room:a", "said", {"n": offset}, (offset, "e")))
    await topic._receive(Frame("7", None, "room:a", "said", {"n": 1}, (1, "new-epoch")))
    assert seen == [{"n": 6}, {"n": 1}]
    assert topic.position == (1, "new-epoch")


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ({"x": float("nan")}, "not finite"),
        ({"x": msgpack.ExtType(1, b"")}, "type JSON does not have"),
        ({"x": deep(100)}, "nested deeper than 100 levels"),
    ],
)
async def test_a_payload_the_server_would_close_the_socket_for_fails_alone(
    payload: dict[str, Any], problem: str
) -> None:
    topic = joined_topic()  # no socket: nothing may be sent
    with pytest.raises(ValueError, match=problem):
        await topic.push("say", payload)
    topic.params = payload
    with pytest.raises(ValueError, match=problem):
        await topic.join()
