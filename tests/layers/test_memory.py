"""InMemoryChannelLayer bookkeeping, driven by an injected clock (no sleeps)."""

from __future__ import annotations

import asyncio
import sys
import threading
import time

import pytest
from asgiref.sync import async_to_sync

from channelworks.exceptions import ChannelFull, InvalidChannelName, InvalidMessage
from channelworks.layers import InMemoryChannelLayer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def test_expired_messages_are_dropped_and_counted(clock: Clock) -> None:
    layer = InMemoryChannelLayer(expiry=10, clock=clock)
    await layer.send("c", {"type": "old"})
    clock.now += 5
    await layer.send("c", {"type": "young"})
    clock.now += 6
    assert (await layer.receive("c"))["type"] == "young"
    assert layer.stats.expired == 1


async def test_expired_messages_free_capacity(clock: Clock) -> None:
    layer = InMemoryChannelLayer(expiry=10, capacity=2, clock=clock)
    await layer.send("c", {"type": "a"})
    await layer.send("c", {"type": "b"})
    with pytest.raises(ChannelFull):
        await layer.send("c", {"type": "c"})
    clock.now += 11
    await layer.send("c", {"type": "c"})
    assert (await layer.receive("c"))["type"] == "c"


async def test_memory_is_freed_when_channels_go_unread(clock: Clock) -> None:
    layer = InMemoryChannelLayer(expiry=10, group_expiry=20, clock=clock)
    for n in range(500):
        await layer.send(f"nobody.reads.{n}", {"type": "lost"})
        await layer.group_add("crowd", f"nobody.reads.{n}")
    assert len(layer._channels) == 500
    clock.now += 21
    layer.sweep()
    assert layer._channels == {}
    assert layer._groups == {}
    assert layer.stats.expired == 500


async def test_sweep_runs_by_itself_during_sends(clock: Clock) -> None:
    layer = InMemoryChannelLayer(expiry=10, clock=clock)
    await layer.send("stale", {"type": "x"})
    clock.now += layer.sweep_interval + 11
    await layer.send("other", {"type": "y"})
    assert "stale" not in layer._channels


async def test_a_drained_channel_is_forgotten_after_a_sweep_without_reads(clock: Clock) -> None:
    layer = InMemoryChannelLayer(clock=clock)
    await layer.send("c", {"type": "x"})
    await layer.receive("c")
    assert "c" in layer._channels  # kept while its reader is likely to come back
    clock.now += layer.sweep_interval
    await layer.group_send("g", {"type": "y"})  # sweeps: "c" was read lately, so it stays
    assert "c" in layer._channels
    clock.now += layer.sweep_interval
    await layer.group_send("g", {"type": "y"})  # sweeps again: unread since, so it goes
    assert "c" not in layer._channels


async def test_cancelled_waiter_leaves_no_channel(clock: Clock) -> None:
    layer = InMemoryChannelLayer(clock=clock)
    waiting = asyncio.create_task(layer.receive("c"))
    await asyncio.sleep(0)
    assert "c" in layer._channels
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    assert layer._channels == {}


async def test_message_handed_to_cancelled_receiver_is_kept_first(clock: Clock) -> None:
    layer = InMemoryChannelLayer(clock=clock)
    waiting = asyncio.create_task(layer.receive("c"))
    await asyncio.sleep(0)
    await layer.send("c", {"type": "first"})
    await layer.send("c", {"type": "second"})
    waiting.cancel()  # the future already holds "first"; the task has not run yet
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert (await layer.receive("c"))["type"] == "first"
    assert (await layer.receive("c"))["type"] == "second"


async def test_live_readers_keep_their_memberships(clock: Clock) -> None:
    layer = InMemoryChannelLayer(group_expiry=20, clock=clock)
    live, dead = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("room", live)
    await layer.group_add("room", dead)
    reader = asyncio.create_task(layer.receive(live))
    await asyncio.sleep(0)
    clock.now += 15
    layer.sweep()
    clock.now += 15  # past the original expiry of both memberships
    await layer.group_send("room", {"type": "still.here"})
    assert (await asyncio.wait_for(reader, 1))["type"] == "still.here"
    assert dead not in layer._channels
    assert layer._groups["room"].keys() == {live}


async def test_group_send_drops_expired_memberships(clock: Clock) -> None:
    layer = InMemoryChannelLayer(group_expiry=20, clock=clock)
    await layer.group_add("room", "a")
    clock.now += 21
    await layer.group_send("room", {"type": "x"})
    assert layer._groups == {}
    assert layer._channels == {}


async def test_send_from_another_thread_wakes_the_receiver() -> None:
    layer = InMemoryChannelLayer()
    waiting = asyncio.create_task(layer.receive("cross"))
    await asyncio.sleep(0)

    def other_thread() -> None:  # async_to_sync here runs a loop of its own
        async_to_sync(layer.send)("cross", {"type": "from.thread"})

    thread = threading.Thread(target=other_thread)
    thread.start()
    assert (await asyncio.wait_for(waiting, 2))["type"] == "from.thread"
    thread.join()


@pytest.mark.parametrize("sender", ["send", "group_send"])
async def test_a_queue_drained_while_another_thread_fills_it_loses_nothing(sender: str) -> None:
    # A thread with a loop of its own (async_to_sync outside the server) queues messages while
    # the server's loop drains the channel: each message and its expiry go in and out in an
    # order that never leaves one without the other (thread switches forced very often).
    count = 30_000
    layer = InMemoryChannelLayer(capacity=count + 1, max_message_size=None)
    await layer.group_add("room", "busy")
    assert layer.receive_nowait("busy") is None  # the channel exists, empty

    async def fill() -> None:
        for number in range(count):
            if sender == "send":
                await layer.send("busy", {"type": "m", "n": number})
            else:
                await layer.group_send("room", {"type": "m", "n": number})

    thread = threading.Thread(target=asyncio.run, args=(fill(),))
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    got: list[int] = []
    try:
        thread.start()
        deadline = time.monotonic() + 60
        while len(got) < count and time.monotonic() < deadline:
            message = layer.receive_nowait("busy")
            if message is not None:
                got.append(message["n"])
    finally:
        sys.setswitchinterval(interval)
        thread.join()
    assert got == list(range(count))


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="capacity"):
        InMemoryChannelLayer(capacity=0)
    with pytest.raises(ValueError, match="expiry"):
        InMemoryChannelLayer(expiry=0)
    with pytest.raises(TypeError, match="hosts"):
        InMemoryChannelLayer(hosts=["redis://"])  # type: ignore[call-arg]


async def test_compiled_regex_capacity_pattern() -> None:
    import re

    layer = InMemoryChannelLayer(capacity=1, channel_capacity={re.compile(r"^http\."): 7})
    assert layer.get_capacity("http.request") == 7
    assert layer.get_capacity("websocket.send") == 1


async def test_message_of_a_cancelled_reader_goes_to_the_next_reader() -> None:
    layer = InMemoryChannelLayer()
    first = asyncio.create_task(layer.receive("jobs"))
    await asyncio.sleep(0)
    second = asyncio.create_task(layer.receive("jobs"))
    await asyncio.sleep(0)
    await layer.send("jobs", {"type": "job", "n": 1})  # handed to the first reader...
    first.cancel()  # ...which is cancelled before it wakes
    await asyncio.gather(first, return_exceptions=True)
    assert (await asyncio.wait_for(second, 1))["n"] == 1
    await layer.send("jobs", {"type": "job", "n": 2})
    assert (await layer.receive("jobs"))["n"] == 2


async def test_given_back_message_may_exceed_capacity() -> None:
    layer = InMemoryChannelLayer(capacity=1)
    reader = asyncio.create_task(layer.receive("c"))
    await asyncio.sleep(0)
    await layer.send("c", {"type": "a"})  # to the reader
    await layer.send("c", {"type": "b"})  # queued: the channel is now full
    reader.cancel()
    await asyncio.gather(reader, return_exceptions=True)
    assert [(await layer.receive("c"))["type"] for _ in range(2)] == ["a", "b"]


async def test_a_busy_reader_keeps_its_memberships(clock: Clock) -> None:
    layer = InMemoryChannelLayer(group_expiry=10, clock=clock)
    channel = await layer.new_channel()
    await layer.group_add("room", channel)
    for tick in range(4):  # read, then "busy in a handler" across each sweep
        clock.now += 9
        await layer.group_send("room", {"type": "tick", "n": tick})
        assert (await layer.receive(channel))["n"] == tick
        layer.sweep()
    assert channel in layer._groups["room"]


async def test_unhashable_and_odd_names_are_refused_clearly() -> None:
    layer = InMemoryChannelLayer()
    with pytest.raises(InvalidChannelName, match=r"\['a'\]"):
        await layer.send(["a"], {"type": "x"})  # type: ignore[arg-type]
    with pytest.raises(InvalidChannelName, match=r"\['a'\]"):
        await layer.receive(["a"])  # type: ignore[arg-type]
    for prefix in (None, "a!b"):
        with pytest.raises(InvalidChannelName, match="prefix"):
            await layer.new_channel(prefix)  # type: ignore[arg-type]


async def test_cross_thread_send_to_a_reader_cancelled_meanwhile_is_kept() -> None:
    layer = InMemoryChannelLayer()
    reader = asyncio.create_task(layer.receive("x"))
    await asyncio.sleep(0)

    def other_thread() -> None:
        async_to_sync(layer.send)("x", {"type": "crossed"})

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join()  # blocks this loop: the hand-over is scheduled here but has not run yet
    reader.cancel()
    await asyncio.gather(reader, return_exceptions=True)
    assert (await asyncio.wait_for(layer.receive("x"), 1))["type"] == "crossed"


async def test_receive_nowait_drains_in_order_and_skips_expired(clock: Clock) -> None:
    layer = InMemoryChannelLayer(expiry=10, clock=clock)
    await layer.send("c", {"type": "old"})
    clock.now += 11
    await layer.send("c", {"type": "a"})
    await layer.send("c", {"type": "b"})
    assert [layer.receive_nowait("c") for _ in range(3)] == [
        {"type": "a"},
        {"type": "b"},
        None,
    ]
    assert layer.stats.expired == 1


async def test_put_hands_over_or_queues_a_fresh_message_without_copying_it() -> None:
    layer = InMemoryChannelLayer(capacity=1)
    loop = asyncio.get_running_loop()
    waiting = asyncio.create_task(layer.receive("put.me!1"))
    await asyncio.sleep(0)
    message = {"type": "m", "n": 1}
    assert layer.put("put.me!1", message, loop)
    assert await waiting is message  # the reader's own decoded dict: nobody else holds it
    assert layer.put("put.me!1", {"type": "m", "n": 2}, loop)
    assert not layer.put("put.me!1", {"type": "m", "n": 3}, loop)  # full: the caller keeps it
    assert layer.receive_nowait("put.me!1") == {"type": "m", "n": 2}
    with pytest.raises(InvalidMessage):
        layer.put("put.me!1", {"type": "_private"}, loop)
    with pytest.raises(InvalidMessage):
        layer.put("put.me!1", {"n": 4}, loop)
    with pytest.raises(InvalidChannelName):
        layer.put("bad name", {"type": "m"}, loop)
