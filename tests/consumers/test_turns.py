"""The loop's task count that decides whether a consumer gives a turn between messages."""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Any

from channelworks.consumers.turns import TaskCount


async def test_task_creations_are_counted_through_any_factory_already_set() -> None:
    loop = asyncio.get_running_loop()
    made: list[Any] = []

    def earlier(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
        made.append(coro)
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(earlier)
    try:
        count = TaskCount(loop)
        await asyncio.create_task(asyncio.sleep(0))
        assert count.created == 1
        await asyncio.gather(asyncio.sleep(0))  # gather makes a task of a coroutine
        assert count.created == 2
        assert len(made) == 2  # through the factory that was there before
        assert count.reliable
        loop.set_task_factory(None)  # replaced after ours: no longer counted
        assert not count.reliable
    finally:
        loop.set_task_factory(None)


async def test_one_count_per_loop() -> None:
    loop = asyncio.get_running_loop()
    try:
        assert TaskCount.of(loop) is TaskCount.of(loop)
    finally:
        loop.set_task_factory(None)


def test_a_loop_that_ran_consumers_can_be_collected() -> None:
    loop = asyncio.new_event_loop()
    TaskCount.of(loop)
    ref = weakref.ref(loop)
    loop.close()
    del loop
    gc.collect()
    assert ref() is None
