"""The history and resume part of the layer contract (docs/channel-layer-spec.md), run against
every backend that has it; the others skip with the reason."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from channelworks.exceptions import InvalidMessage, MessageTooLarge, Unrecoverable
from channelworks.layers import BaseChannelLayer
from channelworks.layers.history import POSITION_KEY, StreamPosition
from tests.layers.conftest import MakeLayer

#: backends without history yet, and why (the contract covers them once they have it)


@pytest.fixture
def layer(make_layer: MakeLayer) -> BaseChannelLayer:
    return make_layer()


async def receive(layer: BaseChannelLayer, channel: str) -> dict[str, Any]:
    return await asyncio.wait_for(layer.receive(channel), 2)


async def test_group_send_with_history_numbers_and_delivers_positions(
    layer: BaseChannelLayer,
) -> None:
    channel = await layer.new_channel()
    await layer.group_add("room", channel)
    first = await layer.group_send("room", {"type": "chat.message", "n": 1}, history=True)
    second = await layer.group_send("room", {"type": "chat.message", "n": 2}, history=True)
    assert isinstance(first, StreamPosition)
    assert isinstance(second, StreamPosition)
    assert first.offset == 1
    assert second == StreamPosition(2, first.epoch)
    got = [await receive(layer, channel) for _ in range(2)]
    assert got == [
        {"type": "chat.message", "n": 1, POSITION_KEY: [1, first.epoch]},
        {"type": "chat.message", "n": 2, POSITION_KEY: [2, first.epoch]},
    ]
    assert StreamPosition.of(got[1]) == second


async def test_history_returns_everything_after_a_position_in_order(
    layer: BaseChannelLayer,
) -> None:
    positions = [
        await layer.group_send("log", {"type": "t", "n": n}, history=True) for n in range(5)
    ]
    epoch = positions[0].epoch if positions[0] else ""
    result = await layer.history("log", since=StreamPosition(2, epoch))
    assert [m["n"] for m in result.messages] == [2, 3, 4]
    assert [StreamPosition.of(m) for m in result.messages] == positions[2:]
    assert result.position == StreamPosition(5, epoch)
    caught_up = await layer.history("log", since=result.position)
    assert caught_up.messages == []
    assert caught_up.position == result.position
    everything = await layer.history("log", since=StreamPosition(0, epoch))
    assert [m["n"] for m in everything.messages] == [0, 1, 2, 3, 4]


async def test_history_of_a_new_group_gives_a_position_the_next_send_continues(
    layer: BaseChannelLayer,
) -> None:
    empty = await layer.history("fresh")
    assert empty.messages == []
    assert empty.position.offset == 0
    sent = await layer.group_send("fresh", {"type": "t"}, history=True)
    assert sent == StreamPosition(1, empty.position.epoch)
    assert [m["type"] for m in (await layer.history("fresh", since=empty.position)).messages] == [
        "t"
    ]


async def test_history_without_since_is_the_last_messages(layer: BaseChannelLayer) -> None:
    for n in range(6):
        await layer.group_send("recent", {"type": "t", "n": n}, history=True)
    result = await layer.history("recent", limit=4)
    assert [m["n"] for m in result.messages] == [2, 3, 4, 5]
    assert result.position.offset == 6


async def test_another_epoch_is_unrecoverable(layer: BaseChannelLayer) -> None:
    sent = await layer.group_send("g", {"type": "t"}, history=True)
    assert sent is not None
    with pytest.raises(Unrecoverable) as info:
        await layer.history("g", since=StreamPosition(0, "another-epoch"))
    assert info.value.position == sent
    assert info.value.group == "g"


async def test_a_position_that_left_the_log_is_unrecoverable_never_partial(
    make_layer: MakeLayer,
) -> None:
    layer = make_layer(history={"small.*": {"size": 3, "ttl": 60}})
    # 300: a backend may keep more than size (Redis trims whole stream nodes of 100 entries)
    for n in range(300):
        last = await layer.group_send("small.one", {"type": "t", "n": n})
    assert last is not None
    assert last.offset == 300
    with pytest.raises(Unrecoverable, match="left the log"):
        await layer.history("small.one", since=StreamPosition(1, last.epoch))
    recent = await layer.history("small.one", since=StreamPosition(297, last.epoch))
    assert [m["n"] for m in recent.messages] == [297, 298, 299]


async def test_more_missed_than_limit_is_unrecoverable(layer: BaseChannelLayer) -> None:
    for n in range(10):
        sent = await layer.group_send("busy", {"type": "t", "n": n}, history=True)
    assert sent is not None
    with pytest.raises(Unrecoverable):
        await layer.history("busy", since=StreamPosition(0, sent.epoch), limit=5)
    assert (
        len((await layer.history("busy", since=StreamPosition(5, sent.epoch), limit=5)).messages)
        == 5
    )


async def test_position_ahead_of_the_log_is_unrecoverable(layer: BaseChannelLayer) -> None:
    sent = await layer.group_send("g", {"type": "t"}, history=True)
    assert sent is not None
    with pytest.raises(Unrecoverable):
        await layer.history("g", since=StreamPosition(5, sent.epoch))


async def test_flush_loses_the_log_and_says_so(layer: BaseChannelLayer) -> None:
    sent = await layer.group_send("g", {"type": "t"}, history=True)
    assert sent is not None
    await layer.flush()
    with pytest.raises(Unrecoverable):
        await layer.history("g", since=sent)
    again = await layer.group_send("g", {"type": "t"}, history=True)
    assert again is not None
    assert again.epoch != sent.epoch
    assert again.offset == 1


async def test_history_patterns_store_without_asking_and_false_opts_out(
    make_layer: MakeLayer,
) -> None:
    layer = make_layer(history={"chat.*": {"size": 50, "ttl": 60}})
    channel = await layer.new_channel()
    await layer.group_add("chat.room", channel)
    await layer.group_add("other", channel)
    kept = await layer.group_send("chat.room", {"type": "t"})
    assert kept is not None
    assert kept.offset == 1
    assert await layer.group_send("chat.room", {"type": "t"}, history=False) is None
    assert await layer.group_send("other", {"type": "t"}) is None
    got = [await receive(layer, channel) for _ in range(3)]
    assert POSITION_KEY in got[0]
    assert got[1] == {"type": "t"}
    assert got[2] == {"type": "t"}
    assert (await layer.history("chat.room")).position.offset == 1


async def test_plain_group_send_is_unchanged(layer: BaseChannelLayer) -> None:
    channel = await layer.new_channel()
    await layer.group_add("plain", channel)
    assert await layer.group_send("plain", {"type": "t", "n": 1}) is None
    assert await receive(layer, channel) == {"type": "t", "n": 1}
    assert (await layer.history("plain")).position.offset == 0


async def test_a_message_holding_the_position_key_is_refused(layer: BaseChannelLayer) -> None:
    with pytest.raises(InvalidMessage):
        await layer.group_send("g", {"type": "t", POSITION_KEY: [1, "x"]}, history=True)
    assert (await layer.history("g")).position.offset == 0


async def test_a_message_too_large_is_refused_and_not_kept(make_layer: MakeLayer) -> None:
    layer = make_layer(max_message_size=200)
    with pytest.raises(MessageTooLarge):
        await layer.group_send("g", {"type": "t", "blob": "x" * 300}, history=True)
    result = await layer.history("g")
    assert result.position.offset == 0
    assert result.messages == []
