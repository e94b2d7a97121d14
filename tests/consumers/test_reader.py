"""The layer reader of a consumer (consumers/reader.py) and the app ``as_asgi()`` returns:
what an idle connection costs must not change what a consumer receives or how servers see it.
"""

from __future__ import annotations

import asyncio
import inspect

import pytest
from asgiref.compatibility import is_double_callable
from asgiref.sync import iscoroutinefunction
from hypercorn.utils import is_asgi
from uvicorn.config import Config

from channelworks.consumers import AsyncConsumer, AsyncWebsocketConsumer
from channelworks.exceptions import StopConsumer
from channelworks.layers import InMemoryChannelLayer, channel_layers
from channelworks.testing import ApplicationCommunicator
from channelworks.types import Message

SCOPE = {"type": "test"}


class Listener(AsyncConsumer):
    async def chat_message(self, event: Message) -> None:
        await self.send({"type": "out", "text": event["text"], "channel": self.channel_name})


@pytest.fixture
def layer() -> InMemoryChannelLayer:
    layer = InMemoryChannelLayer()
    channel_layers.set("default", layer)  # the suite resets the layers
    return layer


def tasks_running(coroutine_name: str) -> int:
    names = [getattr(task.get_coro(), "__qualname__", "") for task in asyncio.all_tasks()]
    return sum(1 for name in names if name.endswith(coroutine_name))


async def test_an_idle_consumer_has_no_reader_task_until_a_message_comes(
    layer: InMemoryChannelLayer,
) -> None:
    async with ApplicationCommunicator(Listener.as_asgi(), SCOPE) as comm:
        await comm.send_input({"type": "chat.message", "text": "from the server side"})
        name = (await comm.receive_output())["channel"]
        assert tasks_running("_pump") == 0  # the server's pump runs in the app's own task
        for number in range(3):
            await layer.send(name, {"type": "chat.message", "text": f"layer {number}"})
        got = [(await comm.receive_output())["text"] for _ in range(3)]
        assert got == ["layer 0", "layer 1", "layer 2"]
        assert tasks_running("_pump") == 1  # from the first message on, a reader task


async def test_a_message_sent_after_the_end_is_not_taken_by_the_ended_reader(
    layer: InMemoryChannelLayer,
) -> None:
    comm = ApplicationCommunicator(Listener.as_asgi(), SCOPE)
    await comm.send_input({"type": "chat.message", "text": "hello"})
    name = (await comm.receive_output())["channel"]
    await comm.stop()
    await layer.send(name, {"type": "chat.message", "text": "late"})
    async with asyncio.timeout(2):
        assert (await layer.receive(name))["text"] == "late"  # nobody else waits on it


def test_as_asgi_is_an_asgi3_application_to_every_server() -> None:
    app = AsyncWebsocketConsumer.as_asgi()
    assert inspect.iscoroutinefunction(app)
    assert asyncio.iscoroutinefunction(app)
    assert iscoroutinefunction(app)
    assert not is_double_callable(app)  # type: ignore[no-untyped-call] # daphne (asgiref)
    assert is_asgi(app)  # hypercorn
    config = Config(app)
    config.load()
    assert getattr(config.loaded_app, "app", None) is app  # uvicorn: no ASGI 2 wrapper
    assert app.consumer_class is AsyncWebsocketConsumer
    assert app.__name__ == "AsyncWebsocketConsumer"


class QueueLayer:
    """A layer of its own, as Channels lets a project write one: no BaseChannelLayer, no
    ``receive_nowait``, only the methods Channels' consumers call."""

    extensions: list[str] = []

    def __init__(self) -> None:
        self.queues: dict[str, asyncio.Queue[Message]] = {}

    async def new_channel(self, prefix: str = "specific") -> str:
        name = f"{prefix}.own!{len(self.queues)}"
        self.queues[name] = asyncio.Queue()
        return name

    async def send(self, channel: str, message: Message) -> None:
        await self.queues[channel].put(message)

    async def receive(self, channel: str) -> Message:
        return await self.queues[channel].get()


async def test_a_layer_that_does_not_subclass_ours_still_feeds_the_reader() -> None:
    layer = QueueLayer()
    channel_layers.set("default", layer)  # type: ignore[arg-type]
    async with ApplicationCommunicator(Listener.as_asgi(), SCOPE) as comm:
        await comm.send_input({"type": "chat.message", "text": "from the server side"})
        name = (await comm.receive_output())["channel"]
        for number in range(3):
            await layer.send(name, {"type": "chat.message", "text": f"layer {number}"})
        got = [(await comm.receive_output())["text"] for _ in range(3)]
        assert got == ["layer 0", "layer 1", "layer 2"]


class Holder(AsyncConsumer):
    """A server event holds the consumer's turn until its gate opens, then ends the consumer."""

    gate: asyncio.Event

    async def hold(self, event: Message) -> None:
        await self.send({"type": "holding", "channel": self.channel_name})
        await Holder.gate.wait()
        raise StopConsumer

    async def chat_message(self, event: Message) -> None:
        await self.send({"type": "out", "text": event["text"]})


async def test_a_message_the_reader_holds_while_waiting_for_the_turn_goes_back_if_it_ends(
    layer: InMemoryChannelLayer,
) -> None:
    # The reader took the message from the channel and waits for the turn, which the server
    # event holds until the consumer ends: the message goes back to the channel, where it is
    # read or expires (counted), not dropped unseen.
    Holder.gate = asyncio.Event()
    comm = ApplicationCommunicator(Holder.as_asgi(), SCOPE)
    await comm.send_input({"type": "hold"})
    name = (await comm.receive_output())["channel"]
    await layer.send(name, {"type": "chat.message", "text": "held"})
    for _ in range(10):  # the reader takes it and waits for the turn
        await asyncio.sleep(0)
    assert layer.receive_nowait(name) is None  # taken by the reader
    Holder.gate.set()
    await comm.wait(2)
    assert layer.receive_nowait(name) == {"type": "chat.message", "text": "held"}
