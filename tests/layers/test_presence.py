"""The shared presence logic (layers/presence.py, presence_tracker.py) with plain data: the
window's diff, and trackers of several "processes" over one in-memory layer, one of them cut
off from the others and back again."""

from __future__ import annotations

import asyncio
import functools
from typing import Any, cast

import pytest

from channelworks.layers import BaseChannelLayer, InMemoryChannelLayer
from channelworks.layers.presence import DiffBatch, Presence, Presences, require_timing
from tests.layers.test_contract_presence import State, apply, until


def presence(ref: str, key: str = "k") -> Presence:
    return Presence(key, {"phx_ref": ref})


def test_a_window_merges_changes_per_group_and_cancels_a_join_and_leave() -> None:
    batch = DiffBatch()
    batch.join("a", presence("1", "alice"))
    batch.join("a", presence("2", "alice"))
    batch.join("b", presence("3", "bob"))
    batch.leave("a", presence("2", "alice"))  # joined in this window: members never see it
    batch.leave("b", presence("0", "carol"))  # joined before: a leave
    batch.join("b", presence("0", "carol"))  # left in this window: members still have it
    batch.join("c", presence("4"))
    batch.leave("c", presence("4"))
    assert batch.take() == [
        {
            "type": "presence.diff",
            "group": "a",
            "joins": {"alice": [{"phx_ref": "1"}]},
            "leaves": {},
        },
        {
            "type": "presence.diff",
            "group": "b",
            "joins": {"bob": [{"phx_ref": "3"}]},
            "leaves": {},
        },
    ]
    assert not batch
    assert batch.take() == []


def test_timing_options_are_checked() -> None:
    require_timing(0.05, 30)
    for interval, timeout in ((0, 30), (-1, 30), (0.05, 0.4), (1, float("nan"))):
        with pytest.raises(ValueError, match="presence_interval"):
            require_timing(interval, timeout)


class Link:
    """One process's way to the shared broker (an in-memory layer), which can be cut: while
    cut, what it sends is lost and what comes to its channels is dropped."""

    def __init__(self, layer: InMemoryChannelLayer) -> None:
        self.layer = layer
        self.cut = False
        self.log_lines = layer.log_lines
        self.stats = layer.stats

    async def new_channel(self, prefix: str = "specific") -> str:
        return await self.layer.new_channel(prefix)

    async def group_add(self, group: str, channel: str) -> None:
        await self.layer.group_add(group, channel)

    async def group_send(
        self, group: str, message: dict[str, Any], *, history: bool | None = None
    ) -> None:
        if not self.cut:
            await self.layer.group_send(group, message, history=history)

    async def receive(self, channel: str) -> dict[str, Any]:
        while True:
            message = await self.layer.receive(channel)
            if not self.cut:
                return message


class Process:
    def __init__(self, broker: InMemoryChannelLayer) -> None:
        self.link = Link(broker)
        layer = cast(BaseChannelLayer, self.link)
        self.presences = Presences(layer, 0.02, 1.0, distributed=True)
        self.state: State = {}  # a member's view, from the diffs it gets
        self.member = ""
        self.reader: asyncio.Task[None] | None = None

    async def start(self, group: str) -> None:
        self.member = await self.link.new_channel("member")
        await self.link.group_add(group, self.member)
        self.reader = asyncio.create_task(self.read())

    async def read(self) -> None:
        while True:
            message = await self.link.receive(self.member)
            apply(self.state, message)

    async def track(self, group: str, key: str) -> str:
        channel = await self.link.new_channel()
        await self.presences.track(group, channel, key, {})
        return channel

    async def sees(self, group: str, expected: dict[str, int]) -> bool:
        listed = await self.presences.state(group)
        return {key: len(metas) for key, metas in listed.items()} == expected

    async def stop(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
        await self.presences.close()


async def test_a_process_cut_off_and_back_leaves_no_ghost_and_no_duplicate() -> None:
    broker = InMemoryChannelLayer()
    a, b, c = (Process(broker) for _ in range(3))
    try:
        for process in (a, b, c):
            await process.start("room")
        await a.track("room", "a")
        await b.track("room", "b")
        gone = await c.track("room", "c")
        everyone = {"a": 1, "b": 1, "c": 1}
        for process in (a, b, c):
            await until(functools.partial(process.sees, "room", everyone))
        await until(lambda: _true(all(keys(p.state) == everyone for p in (a, b, c))))

        c.link.cut = True  # C hears nobody and nobody hears C
        await c.presences.untrack("room", gone)  # changes it makes meanwhile
        await c.track("room", "c2")
        # the others drop C after the timeout and one of them sends its leave
        await until(functools.partial(a.sees, "room", {"a": 1, "b": 1}), timeout=5)
        await until(lambda: _true(keys(a.state) == keys(b.state) == {"a": 1, "b": 1}))

        c.link.cut = False  # back: its state wins, the difference is sent as diffs
        healed = {"a": 1, "b": 1, "c2": 1}
        for process in (a, b, c):
            await until(functools.partial(process.sees, "room", healed), timeout=5)
        await until(lambda: _true(all(keys(p.state) == healed for p in (a, b))), timeout=5)
        await asyncio.sleep(0.5)  # nothing late brings a ghost back or a second meta
        for process in (a, b, c):
            assert await process.sees("room", healed)
        await until(lambda: _true(keys(c.state) == healed), timeout=5)  # its own leave too
        assert keys(a.state) == keys(b.state) == keys(c.state) == healed
    finally:
        for process in (a, b, c):
            await process.stop()


def keys(state: State) -> dict[str, int]:
    return {key: len(refs) for key, refs in state.items()}


async def _true(value: bool) -> bool:
    return value


def test_a_tracker_whose_loop_ended_starts_again_on_the_next(tmp_path: Any) -> None:
    """A layer used from one event loop and then another (tests, ``async_to_sync``): the
    tracker of the first is gone with it; the next call starts it again."""
    from tests.layers.backends import redis

    first, second = redis(presence_timeout=2), None
    try:
        second = redis(prefix=first.prefix, presence_timeout=2)  # type: ignore[attr-defined]

        async def track_in_first() -> None:
            await first.presence_track("room", await first.new_channel(), "early", {})
            await asyncio.sleep(0.2)  # its window sent: the second needs its state later

        async def track_again_and_look() -> dict[str, Any]:
            assert second is not None
            await second.presence("room")
            await first.presence_track("room", await first.new_channel(), "late", {})
            async with asyncio.timeout(10):
                while len(listed := await second.presence("room")) < 2:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
            return listed

        asyncio.run(track_in_first())
        assert sorted(asyncio.run(track_again_and_look())) == ["early", "late"]
    finally:

        async def close() -> None:
            await first.close()
            if second is not None:
                await second.close()

        asyncio.run(close())
