"""A layer message taken along by the call of a frame's sync ``receive`` (batches.Offers).

In the tutorial's room the sender gets its own copy of each message while its ``receive``
runs; the reader offers it to that call, which handles it after the hook. From user code it
must look like the two calls one after the other: the frame's sends first, then the
handler's, each error for its own message, a task the hook started run first, and nothing
handled twice or lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar

import pytest
from asgiref.sync import async_to_sync

from channelworks.consumers import WebsocketConsumer, base, sync_pool
from channelworks.consumers.batches import Offered
from channelworks.consumers.turns import TaskCount
from channelworks.layers import InMemoryChannelLayer, channel_layers
from channelworks.layers.base import background_task
from channelworks.testing import WebsocketCommunicator
from channelworks.types import Message


class Talker(WebsocketConsumer):
    """The tutorial's room, noting in which thread each hook and handler ran; its server
    refuses the frame ``refused`` (a client gone...)."""

    threads: ClassVar[list[tuple[str, int]]] = []
    failures: ClassVar[list[str]] = []
    refused: ClassVar[str] = ""
    loop: ClassVar[asyncio.AbstractEventLoop | None] = None

    async def websocket_connect(self, message: Message) -> None:
        Talker.loop = asyncio.get_running_loop()
        send = self.base_send

        async def refusing(message: Message) -> None:
            if Talker.refused and message.get("text") == Talker.refused:
                raise ValueError("send failed")
            await send(message)

        self.base_send = refusing
        await super().websocket_connect(message)

    def connect(self) -> None:
        assert self.channel_layer is not None
        assert self.channel_name is not None
        async_to_sync(self.channel_layer.group_add)("talk", self.channel_name)
        self.accept()

    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        assert self.channel_layer is not None
        assert text_data is not None
        Talker.threads.append(("receive", threading.get_ident()))
        async_to_sync(self.channel_layer.group_send)(
            "talk", {"type": "chat.message", "text": text_data}
        )
        if text_data == "spawn":
            async_to_sync(self._spawn)()
        elif text_data == "spawn from the thread":
            time.sleep(0.05)  # some work meanwhile: the reader has offered its copy
            assert Talker.loop is not None
            asyncio.run_coroutine_threadsafe(self._note(), Talker.loop)
        self.send(text_data=f"ack {text_data}")
        if text_data == "hook fails":
            raise ValueError("the hook")

    async def _note(self) -> None:
        Talker.threads.append(("task", threading.get_ident()))

    async def _spawn(self) -> None:
        asyncio.get_running_loop().create_task(self._note())

    def chat_message(self, event: Message) -> None:
        Talker.threads.append(("chat", threading.get_ident()))
        if event["text"] == "handler fails":
            raise ValueError("the handler")
        self.send(text_data=event["text"])

    async def handle_exception(self, exc: Exception, message: Message) -> None:
        if not isinstance(exc, ValueError):
            raise exc
        Talker.failures.append(f"{message['type']}: {exc}")


@pytest.fixture
def layer_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The types of the layer messages that got a pool call of their own (or a batch)."""
    Talker.threads, Talker.failures, Talker.refused = [], [], ""
    channel_layers.set("default", InMemoryChannelLayer())  # the suite resets the layers
    kinds: list[str] = []
    single, batch = sync_pool.run_sync_handler, sync_pool.run_batch

    def one(
        consumer: Any, function: Callable[[Any, Any], Any], message: Any, first: bool = False
    ) -> Any:
        kinds.append(message["type"])
        return single(consumer, function, message, first)

    def many(consumer: Any, function: Callable[[], None], messages: int, first: bool) -> Any:
        kinds.append(f"batch of {messages}")
        return batch(consumer, function, messages, first)

    monkeypatch.setattr(base, "run_sync_handler", one)
    monkeypatch.setattr(base, "run_batch", many)
    return kinds


@contextlib.asynccontextmanager
async def talking(layer_calls: list[str]) -> AsyncIterator[WebsocketCommunicator]:
    """A member of the room after its first message (the first layer message of a type goes
    on its own: taken along are those of types already in the class's cache); disconnected
    at the end."""
    comm = WebsocketCommunicator(Talker.as_asgi(), "/talk")
    ok, _ = await comm.connect()
    assert ok
    try:
        await comm.send_to(text_data="warm-up")
        assert await comm.receive_from(timeout=5) == "ack warm-up"
        assert await comm.receive_from(timeout=5) == "warm-up"
        Talker.threads.clear()
        layer_calls.clear()
        yield comm
    finally:
        await comm.disconnect()


async def test_the_senders_own_copy_is_handled_in_its_receives_call(
    layer_calls: list[str],
) -> None:
    async with talking(layer_calls) as comm:
        for number in range(3):
            await comm.send_to(text_data=f"m{number}")
            assert await comm.receive_from(timeout=5) == f"ack m{number}"
            assert await comm.receive_from(timeout=5) == f"m{number}"  # after the ack
        assert layer_calls == []  # no call of their own
        receive_threads = [ident for name, ident in Talker.threads if name == "receive"]
        chat_threads = [ident for name, ident in Talker.threads if name == "chat"]
        assert chat_threads == receive_threads  # each right after its receive, in its thread
        assert [name for name, _ in Talker.threads] == ["receive", "chat"] * 3


async def test_the_handlers_error_is_reported_for_its_own_message(
    layer_calls: list[str],
) -> None:
    async with talking(layer_calls) as comm:
        await comm.send_to(text_data="handler fails")
        assert await comm.receive_from(timeout=5) == "ack handler fails"
        await comm.send_to(text_data="after")
        assert await comm.receive_from(timeout=5) == "ack after"
        assert await comm.receive_from(timeout=5) == "after"
        assert Talker.failures == ["chat.message: the handler"]
        assert layer_calls == []


async def test_nothing_is_taken_along_after_a_hook_that_raised(layer_calls: list[str]) -> None:
    async with talking(layer_calls) as comm:
        await comm.send_to(text_data="hook fails")
        assert await comm.receive_from(timeout=5) == "ack hook fails"
        assert await comm.receive_from(timeout=5) == "hook fails"  # handled on its own
        assert Talker.failures == ["websocket.receive: the hook"]
        assert layer_calls == ["chat.message"]


async def test_a_task_the_hook_started_runs_before_the_message_it_got(
    layer_calls: list[str],
) -> None:
    async with talking(layer_calls) as comm:
        await comm.send_to(text_data="spawn")
        assert await comm.receive_from(timeout=5) == "ack spawn"
        assert await comm.receive_from(timeout=5) == "spawn"
        assert [name for name, _ in Talker.threads] == ["receive", "task", "chat"]
        assert layer_calls == ["chat.message"]  # not taken along: the task ran first


async def test_a_failed_send_of_the_handler_is_reported_for_its_message(
    layer_calls: list[str],
) -> None:
    async with talking(layer_calls) as comm:
        Talker.refused = "boom"  # the chat copy, sent by chat_message
        await comm.send_to(text_data="boom")
        assert await comm.receive_from(timeout=5) == "ack boom"
        await comm.send_to(text_data="after")
        assert await comm.receive_from(timeout=5) == "ack after"
        assert await comm.receive_from(timeout=5) == "after"
        assert Talker.failures == ["chat.message: send failed"]


async def test_a_failed_send_of_the_hook_loses_nothing_of_the_handler(
    layer_calls: list[str],
) -> None:
    async with talking(layer_calls) as comm:
        Talker.refused = "ack boom"  # the hook's own send, after its group_send
        await comm.send_to(text_data="boom")
        assert await comm.receive_from(timeout=5) == "boom"  # the chat copy still goes out
        await comm.send_to(text_data="after")
        assert await comm.receive_from(timeout=5) == "ack after"
        assert await comm.receive_from(timeout=5) == "after"
        assert Talker.failures == ["websocket.receive: send failed"]


async def test_a_task_started_from_the_hooks_thread_runs_first(layer_calls: list[str]) -> None:
    async with talking(layer_calls) as comm:
        await comm.send_to(text_data="spawn from the thread")
        assert await comm.receive_from(timeout=5) == "ack spawn from the thread"
        assert await comm.receive_from(timeout=5) == "spawn from the thread"
        assert [name for name, _ in Talker.threads] == ["receive", "task", "chat"]


async def test_a_task_runs_first_when_the_loops_task_factory_was_replaced(
    layer_calls: list[str],
) -> None:
    async with talking(layer_calls) as comm:
        loop = asyncio.get_running_loop()
        previous = loop.get_task_factory()
        loop.set_task_factory(lambda loop, coro, **kwargs: asyncio.Task(coro, loop=loop, **kwargs))
        try:
            await comm.send_to(text_data="spawn")
            assert await comm.receive_from(timeout=5) == "ack spawn"
            assert await comm.receive_from(timeout=5) == "spawn"
        finally:
            loop.set_task_factory(previous)
    assert [name for name, _ in Talker.threads] == ["receive", "task", "chat"]


def test_an_offer_is_taken_by_one_side_only() -> None:
    waiting: deque[Offered] = deque()
    handled: list[Message] = []
    message = {"type": "chat.message", "text": "x"}
    first = Offered(None, lambda consumer, event: handled.append(event), message, waiting)
    waiting.append(first)
    assert first.withdraw()  # not taken: the reader handles it
    assert not waiting
    second = Offered(None, lambda consumer, event: handled.append(event), message, waiting)
    waiting.append(second)
    waiting.popleft()()  # the worker takes it and runs it
    assert not second.withdraw()
    assert second.done
    assert handled == [message]
    assert asyncio.run(second.settled())


async def test_a_layers_background_tasks_are_not_counted_as_a_handlers() -> None:
    @background_task
    async def flusher() -> None:
        pass

    async def started_by_a_handler() -> None:
        pass

    count = TaskCount.of(asyncio.get_running_loop())
    before = count.created
    await asyncio.get_running_loop().create_task(flusher())
    assert count.created == before
    await asyncio.get_running_loop().create_task(started_by_a_handler())
    assert count.created == before + 1
