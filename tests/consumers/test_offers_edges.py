"""Edges of a layer message taken along by a frame's sync ``receive`` (batches.Offers), found
in review: a failed send is reported for the message whose handler sent it, none is lost, and
a task the hook started runs first however it was started."""

from __future__ import annotations

import asyncio
import time
from typing import Any, ClassVar

import pytest
from asgiref.sync import async_to_sync

from channelworks.consumers import WebsocketConsumer
from channelworks.layers import InMemoryChannelLayer, channel_layers
from channelworks.testing import WebsocketCommunicator
from channelworks.types import Message


class Edgy(WebsocketConsumer):
    """The tutorial's room; its server refuses the frame ``refused`` (a client gone...)."""

    refused: ClassVar[str] = ""
    order: ClassVar[list[str]] = []
    failures: ClassVar[list[str]] = []
    loop: ClassVar[asyncio.AbstractEventLoop | None] = None

    async def websocket_connect(self, message: Message) -> None:
        Edgy.loop = asyncio.get_running_loop()
        send = self.base_send

        async def refusing(message: Message) -> None:
            if Edgy.refused and message.get("text") == Edgy.refused:
                raise RuntimeError("send failed")
            await send(message)

        self.base_send = refusing
        await super().websocket_connect(message)

    def connect(self) -> None:
        assert self.channel_layer is not None
        assert self.channel_name is not None
        async_to_sync(self.channel_layer.group_add)("edges", self.channel_name)
        self.accept()

    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        assert self.channel_layer is not None
        Edgy.order.append(f"receive {text_data}")
        async_to_sync(self.channel_layer.group_send)(
            "edges", {"type": "chat.message", "text": text_data}
        )
        if text_data == "threadsafe":
            time.sleep(0.05)  # some work meanwhile: the reader has offered its copy
            assert Edgy.loop is not None
            asyncio.run_coroutine_threadsafe(self._note(), Edgy.loop)
        elif text_data == "task":
            async_to_sync(self._spawn)()
        self.send(text_data=f"ack {text_data}")

    async def _note(self) -> None:
        Edgy.order.append("task")

    async def _spawn(self) -> None:
        asyncio.get_running_loop().create_task(self._note())

    def chat_message(self, event: Message) -> None:
        Edgy.order.append(f"chat {event['text']}")
        self.send(text_data=event["text"])

    async def handle_exception(self, exc: Exception, message: Message) -> None:
        Edgy.failures.append(f"{message['type']}: {exc}")


@pytest.fixture
async def comm() -> Any:
    channel_layers.set("default", InMemoryChannelLayer())  # the suite resets the layers
    Edgy.refused, Edgy.order, Edgy.failures = "", [], []
    comm = WebsocketCommunicator(Edgy.as_asgi(), "/edges")
    connected, _ = await comm.connect()
    assert connected
    await comm.send_to(text_data="warm-up")  # its type is in the class's cache from now on
    assert await comm.receive_from(timeout=5) == "ack warm-up"
    assert await comm.receive_from(timeout=5) == "warm-up"
    Edgy.order.clear()
    yield comm
    await comm.disconnect()


async def test_a_failed_send_of_the_handler_is_reported_for_its_message(comm: Any) -> None:
    Edgy.refused = "boom"  # the chat copy, sent by chat_message
    await comm.send_to(text_data="boom")
    assert await comm.receive_from(timeout=5) == "ack boom"
    await comm.send_to(text_data="after")
    assert await comm.receive_from(timeout=5) == "ack after"
    assert await comm.receive_from(timeout=5) == "after"
    assert Edgy.failures == ["chat.message: send failed"]


async def test_a_failed_send_of_the_hook_loses_nothing_of_the_handler(comm: Any) -> None:
    Edgy.refused = "ack boom"  # the hook's own send
    await comm.send_to(text_data="boom")
    assert await comm.receive_from(timeout=5) == "boom"  # the chat copy still goes out
    await comm.send_to(text_data="after")
    assert await comm.receive_from(timeout=5) == "ack after"
    assert await comm.receive_from(timeout=5) == "after"
    assert Edgy.failures == ["websocket.receive: send failed"]


async def test_a_task_started_from_the_hooks_thread_runs_first(comm: Any) -> None:
    await comm.send_to(text_data="threadsafe")
    assert await comm.receive_from(timeout=5) == "ack threadsafe"
    assert await comm.receive_from(timeout=5) == "threadsafe"
    assert Edgy.order == ["receive threadsafe", "task", "chat threadsafe"]


async def test_a_task_runs_first_when_the_loops_task_factory_was_replaced(comm: Any) -> None:
    loop = asyncio.get_running_loop()
    previous = loop.get_task_factory()
    loop.set_task_factory(lambda loop, coro, **kwargs: asyncio.Task(coro, loop=loop, **kwargs))
    try:
        await comm.send_to(text_data="task")
        assert await comm.receive_from(timeout=5) == "ack task"
        assert await comm.receive_from(timeout=5) == "task"
    finally:
        loop.set_task_factory(previous)
    assert Edgy.order == ["receive task", "task", "chat task"]
