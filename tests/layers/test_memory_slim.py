"""InMemoryChannelLayer's per-channel bookkeeping kept small: a channel's first waiter has a slot
of its own, the others wait in line behind it; together they behave as the list of waiters
they replace. Queued messages cost the garbage collector nothing per message."""

from __future__ import annotations

import asyncio
import gc

import pytest

from channelworks.layers import InMemoryChannelLayer


async def readers(
    layer: InMemoryChannelLayer, channel: str, count: int
) -> list[asyncio.Task[dict[str, object]]]:
    tasks = []
    for _ in range(count):
        tasks.append(asyncio.create_task(layer.receive(channel)))
        await asyncio.sleep(0)  # each waits before the next one comes: their order is known
    return tasks


@pytest.mark.parametrize("sender", ["send", "group_send"])
async def test_readers_of_one_channel_are_served_in_the_order_they_came(sender: str) -> None:
    layer = InMemoryChannelLayer()
    await layer.group_add("room", "jobs")
    tasks = await readers(layer, "jobs", 3)
    for number in range(3):
        if sender == "send":
            await layer.send("jobs", {"type": "job", "n": number})
        else:
            await layer.group_send("room", {"type": "job", "n": number})
    assert [(await asyncio.wait_for(task, 1))["n"] for task in tasks] == [0, 1, 2]
    await layer.send("jobs", {"type": "job", "n": 3})  # nobody waits now: queued
    assert layer.receive_nowait("jobs") == {"type": "job", "n": 3}


@pytest.mark.parametrize("cancelled", [0, 1, 2])
async def test_a_reader_that_stops_leaves_the_line_in_order(cancelled: int) -> None:
    layer = InMemoryChannelLayer()
    tasks = await readers(layer, "jobs", 3)
    tasks[cancelled].cancel()
    await asyncio.gather(tasks[cancelled], return_exceptions=True)
    others = [task for index, task in enumerate(tasks) if index != cancelled]
    await layer.send("jobs", {"type": "job", "n": 1})
    await layer.send("jobs", {"type": "job", "n": 2})
    assert [(await asyncio.wait_for(task, 1))["n"] for task in others] == [1, 2]
    await layer.send("jobs", {"type": "job", "n": 3})  # nobody waits now: queued
    assert (await layer.receive("jobs"))["n"] == 3


async def test_a_channel_with_readers_in_line_stays_until_the_last_one_stops() -> None:
    layer = InMemoryChannelLayer()
    tasks = await readers(layer, "jobs", 2)
    tasks[0].cancel()
    await asyncio.gather(tasks[0], return_exceptions=True)
    assert "jobs" in layer._channels  # the second still waits
    tasks[1].cancel()
    await asyncio.gather(tasks[1], return_exceptions=True)
    assert layer._channels == {}


async def test_closing_ends_every_reader_in_line() -> None:
    layer = InMemoryChannelLayer()
    tasks = await readers(layer, "jobs", 3)
    assert layer.end_receives(lambda channel: RuntimeError(f"closed {channel}")) == 3
    for task in tasks:
        with pytest.raises(RuntimeError, match="closed jobs"):
            await task
    assert layer._channels == {}


async def test_receive_later_gives_a_queued_message_or_a_future_for_the_next() -> None:
    layer = InMemoryChannelLayer()
    await layer.send("c", {"type": "queued"})
    assert layer.receive_later("c") == {"type": "queued"}
    waiter = layer.receive_later("c")
    assert isinstance(waiter, asyncio.Future)
    assert not waiter.done()
    await layer.group_add("room", "c")
    await layer.group_send("room", {"type": "next"})
    assert waiter.result() == {"type": "next"}


async def test_a_wait_cancelled_before_its_message_leaves_the_line_and_frees_the_channel() -> None:
    layer = InMemoryChannelLayer()
    waiter = layer.receive_later("c")
    assert isinstance(waiter, asyncio.Future)
    layer.cancel_wait("c", waiter)
    assert layer._channels == {}
    await layer.send("c", {"type": "later"})  # queued for the next reader, not the old wait
    assert not waiter.done()
    assert layer.receive_nowait("c") == {"type": "later"}


async def test_a_message_handed_to_a_cancelled_wait_goes_back_first_in_line() -> None:
    layer = InMemoryChannelLayer()
    waiter = layer.receive_later("c")
    assert isinstance(waiter, asyncio.Future)
    await layer.send("c", {"type": "handed", "n": 1})  # handed to the wait...
    await layer.send("c", {"type": "queued", "n": 2})
    layer.cancel_wait("c", waiter)  # ...which stops before its reader took it
    assert [layer.receive_nowait("c"), layer.receive_nowait("c")] == [
        {"type": "handed", "n": 1},
        {"type": "queued", "n": 2},
    ]


async def test_a_wait_ended_by_the_layer_closing_gives_nothing_back() -> None:
    layer = InMemoryChannelLayer()
    waiter = layer.receive_later("c")
    assert isinstance(waiter, asyncio.Future)
    assert layer.end_receives(lambda channel: RuntimeError("closed")) == 1
    layer.cancel_wait("c", waiter)
    assert layer.receive_nowait("c") is None


@pytest.mark.parametrize("sender", ["send", "group_send"])
async def test_queued_messages_add_no_object_the_garbage_collector_tracks(sender: str) -> None:
    # A room's burst waits in its members' queues; a tracked object per message (an
    # ``(expires, message)`` tuple) made every collection visit them all.
    layer = InMemoryChannelLayer(capacity=1000)
    await layer.group_add("room", "jobs")
    send = layer.send if sender == "send" else layer.group_send
    target = "jobs" if sender == "send" else "room"
    await send(target, {"type": "job", "text": "first"})  # the queue itself is made
    before = len(gc.get_objects())
    for index in range(200):
        await send(target, {"type": "job", "text": f"job {index}"})
    assert len(gc.get_objects()) - before < 20  # 200 before
    got = [layer.receive_nowait("jobs") for _ in range(201)]
    assert [message["text"] for message in got if message] == [
        "first",
        *(f"job {index}" for index in range(200)),
    ]
    assert {name: len(queue) for name, queue in layer.channels.items()} == {}
