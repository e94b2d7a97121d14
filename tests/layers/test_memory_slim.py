"""InMemoryChannelLayer's per-channel bookkeeping kept small: a channel's first waiter has a slot
of its own, the others wait in line behind it; together they behave as the list of waiters
they replace."""

from __future__ import annotations

import asyncio

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
