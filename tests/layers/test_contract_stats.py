"""What every backend counts for operators (docs/operations.md): the fan-out of group
messages (``layer.fanout``) and the presence and history counters of ``layer.stats``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from channelworks.exceptions import Unrecoverable
from channelworks.layers import BaseChannelLayer
from channelworks.layers.base import FANOUT_BUCKETS, FanOut
from channelworks.layers.history import StreamPosition
from tests.layers.conftest import MakeLayer

TIMEOUT = 5.0


def observed(fanout: FanOut) -> list[int]:
    """The bucket bounds of each observation (``-1``: over every bound)."""
    bounds = [*FANOUT_BUCKETS, -1]
    return [bound for bound, count in zip(bounds, fanout.counts, strict=True) for _ in range(count)]


async def receive(layer: BaseChannelLayer, channel: str) -> dict[str, Any]:
    return await asyncio.wait_for(layer.receive(channel), TIMEOUT)


async def until(check: Callable[[], bool], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while not check():
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def test_fanout_buckets() -> None:
    fanout = FanOut()
    for delivered in (0, 1, 2, 3, 100, 101, 10_000, 10_001):
        fanout.observe(delivered)
    assert observed(fanout) == [1, 1, 2, 5, 100, 200, 10_000, -1]
    assert fanout.sum == 0 + 1 + 2 + 3 + 100 + 101 + 10_000 + 10_001


async def test_a_group_message_is_one_observation_of_the_channels_it_reached(
    make_layer: MakeLayer,
) -> None:
    layer = make_layer(capacity=1)
    channels = [await layer.new_channel() for _ in range(3)]
    for channel in channels:
        await layer.group_add("room", channel)
    await layer.group_send("room", {"type": "m", "n": 1})
    for channel in channels:
        assert (await receive(layer, channel))["n"] == 1
    await until(lambda: layer.fanout.sum == 3, "the fan-out of the first message")
    assert observed(layer.fanout) == [5]
    # nobody reads the first channel now: full (capacity 1), skipped, not counted as reached
    await layer.group_send("room", {"type": "m", "n": 2})
    await receive(layer, channels[1])
    await receive(layer, channels[2])
    await layer.group_send("room", {"type": "m", "n": 3})
    await until(lambda: layer.fanout.sum == 3 + 3 + 2, "the fan-out of the third message")
    assert observed(layer.fanout) == [2, 5, 5]
    await layer.group_send("nobody", {"type": "m"})  # no members anywhere: nothing delivered
    await asyncio.sleep(0.1)
    assert sum(layer.fanout.counts) == 3


async def test_each_process_observes_its_own_members(make_layer: MakeLayer) -> None:
    a = make_layer()
    if "prefix" not in vars(a):
        pytest.skip("one process only")
    b = make_layer(prefix=a.prefix)  # type: ignore[attr-defined]
    here = [await a.new_channel() for _ in range(2)]
    there = [await b.new_channel() for _ in range(7)]
    for layer, channels in ((a, here), (b, there)):
        for channel in channels:
            await layer.group_add("room", channel)
    await a.group_send("room", {"type": "m"})
    for layer, channels in ((a, here), (b, there)):
        for channel in channels:
            await receive(layer, channel)
    await until(lambda: a.fanout.sum == 2 and b.fanout.sum == 7, "both processes' fan-outs")
    assert observed(a.fanout) == [2]
    assert observed(b.fanout) == [10]


async def test_history_appends_reads_and_unrecoverable_are_counted(
    make_layer: MakeLayer,
) -> None:
    layer = make_layer()
    stats = layer.stats
    first = await layer.group_send("log", {"type": "m", "n": 1}, history=True)
    await layer.group_send("log", {"type": "m", "n": 2}, history=True)
    await layer.group_send("log", {"type": "m", "n": 3})  # no history: not appended
    assert first is not None
    assert stats.history_appends == 2
    assert len((await layer.history("log", since=first)).messages) == 1
    assert len((await layer.history("log")).messages) == 2
    with pytest.raises(Unrecoverable):
        await layer.history("log", since=StreamPosition(1, "another-epoch"))
    assert (stats.history_reads, stats.history_unrecoverable) == (2, 1)


async def test_presence_calls_and_diffs_are_counted(make_layer: MakeLayer) -> None:
    layer = make_layer(presence_interval=0.01, presence_timeout=1)
    stats = layer.stats
    watcher, a, b = [await layer.new_channel() for _ in range(3)]
    await layer.group_add("room", watcher)
    await layer.group_add("lobby", watcher)
    diffs = 0

    async def until_diffs(side: str) -> None:
        """Receive diffs until alice's ``side`` (joins, leaves) came in both groups."""
        nonlocal diffs
        seen: set[str] = set()
        while seen != {"room", "lobby"}:
            message = await receive(layer, watcher)
            assert message["type"] == "presence.diff"
            diffs += 1
            if "alice" in message[side]:
                seen.add(message["group"])

    await layer.presence_track("room", a, "alice", {})
    await layer.presence_track("lobby", a, "alice", {})
    await layer.presence_track("room", b, "bob", {})
    await layer.presence_update("room", b, "bob", {"typing": True})
    await until_diffs("joins")
    await layer.presence_untrack("room", b)
    await layer.presence_untrack("room", b)  # not tracked any more: nothing
    await layer.presence_untrack_all(a)  # room and lobby
    await until_diffs("leaves")
    assert (stats.presence_tracks, stats.presence_updates, stats.presence_untracks) == (3, 1, 3)
    await until(lambda: stats.presence_diffs == diffs, "the diffs counted as sent")
