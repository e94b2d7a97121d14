"""``channelworks.utils`` (``channels.utils`` for Channels projects) and ``get_handler_name``."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import pytest

from channelworks.consumers import AsyncConsumer, get_handler_name
from channelworks.utils import await_many_dispatch, name_that_thing


def a_function() -> None: ...


class Thing:
    def method(self) -> None: ...

    @classmethod
    def build(cls) -> None: ...


def test_name_that_thing_names_functions_classes_methods_and_instances() -> None:
    assert name_that_thing(a_function) == f"{__name__}.a_function"
    assert name_that_thing(Thing) == f"{__name__}.Thing"
    assert name_that_thing(Thing()) == f"{__name__}.Thing"
    assert name_that_thing(Thing().method) == f"{__name__}.Thing.method"
    assert name_that_thing(Thing.build) == f"{__name__}.Thing.build"
    assert name_that_thing(AsyncConsumer) == "channelworks.consumers.base.AsyncConsumer"
    assert name_that_thing(len) == "builtins.len"
    assert name_that_thing(functools.partial(a_function)) == "functools.partial"


def test_get_handler_name_maps_dots_to_underscores_and_refuses_bad_types() -> None:
    assert get_handler_name({"type": "chat.message"}) == "chat_message"
    assert get_handler_name({"type": "websocket.receive"}) == "websocket_receive"
    for bad in ({}, {"type": ""}, {"type": 3}, {"type": "_private"}, ["type"]):
        with pytest.raises(ValueError, match="type"):
            get_handler_name(bad)  # type: ignore[arg-type]


async def test_await_many_dispatch_serves_every_source_in_turn_until_one_fails() -> None:
    first: asyncio.Queue[Any] = asyncio.Queue()
    second: asyncio.Queue[Any] = asyncio.Queue()
    got: list[Any] = []
    four = asyncio.Event()

    async def dispatch(message: Any) -> None:
        got.append(message)
        if len(got) == 4:
            four.set()
        if message == "b1":
            await second.put("b2")  # arrives while b1 is being dispatched

    calls = {"first": 0, "second": 0}

    async def from_first() -> Any:
        calls["first"] += 1
        item = await first.get()
        if isinstance(item, Exception):
            raise item
        return item

    async def from_second() -> Any:
        calls["second"] += 1
        return await second.get()

    loop = asyncio.create_task(await_many_dispatch([from_first, from_second], dispatch))
    for item in ("a1", "a2"):
        await first.put(item)
    await second.put("b1")
    await asyncio.wait_for(four.wait(), 5)
    assert sorted(got) == ["a1", "a2", "b1", "b2"]
    assert got.index("a1") < got.index("a2")
    assert got.index("b1") < got.index("b2")
    await first.put(RuntimeError("source broke"))
    with pytest.raises(RuntimeError, match="source broke"):
        await loop
    assert calls == {"first": 3, "second": 3}  # once, then again after each of its messages
    # nothing left waiting on the queues: the pending call of the other source was cancelled
    await second.put("later")
    assert second.qsize() == 1


async def test_await_many_dispatch_cancelled_cancels_its_sources() -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def source() -> Any:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def dispatch(message: Any) -> None: ...

    loop = asyncio.create_task(await_many_dispatch([source], dispatch))
    await started.wait()
    loop.cancel()
    with pytest.raises(asyncio.CancelledError):
        await loop
    assert cancelled.is_set()
