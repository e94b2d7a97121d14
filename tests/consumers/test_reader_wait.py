"""An idle consumer's reader waits on the in-memory layer's future, without a coroutine
(``InMemoryChannelLayer.receive_later``): what it receives, gives back and fails with is what
a reader task would."""

from __future__ import annotations

import asyncio
import gc

import pytest

from channelworks.exceptions import ChannelLayerError
from channelworks.layers import InMemoryChannelLayer
from channelworks.testing import ApplicationCommunicator
from tests.consumers.test_reader import SCOPE, Listener, layer

__all__ = ["layer"]  # the fixture, shared with test_reader.py


async def channel_of(comm: ApplicationCommunicator) -> str:
    await comm.send_input({"type": "chat.message", "text": "who"})
    name: str = (await comm.receive_output())["channel"]
    return name


def coroutines_named(name: str) -> int:
    gc.collect()
    return sum(
        1
        for o in gc.get_objects()
        if asyncio.iscoroutine(o) and getattr(o, "__qualname__", "").endswith(name)
    )


async def test_an_idle_reader_holds_no_receive_coroutine(layer: InMemoryChannelLayer) -> None:
    async with ApplicationCommunicator(Listener.as_asgi(), SCOPE) as comm:
        name = await channel_of(comm)
        assert coroutines_named("InMemoryChannelLayer.receive") == 0
        assert coroutines_named("InMemoryChannelLayer.receive_next") == 0
        await layer.send(name, {"type": "chat.message", "text": "first"})
        assert (await comm.receive_output())["text"] == "first"


async def test_a_message_handed_to_the_wait_as_the_consumer_ends_goes_back(
    layer: InMemoryChannelLayer,
) -> None:
    comm = ApplicationCommunicator(Listener.as_asgi(), SCOPE)
    name = await channel_of(comm)
    comm.future.cancel()  # the consumer ends first...
    await layer.send(name, {"type": "chat.message", "text": "in flight"})  # ...then it comes
    await comm.stop()  # handed to the wait, which the ending gives back
    async with asyncio.timeout(2):
        assert (await layer.receive(name))["text"] == "in flight"


async def test_a_wait_the_layer_ends_ends_the_consumer_with_its_error(
    layer: InMemoryChannelLayer,
) -> None:
    comm = ApplicationCommunicator(Listener.as_asgi(), SCOPE)
    await channel_of(comm)
    assert layer.end_receives(lambda channel: ChannelLayerError(f"{channel} closed")) == 1
    with pytest.raises(ChannelLayerError, match="closed"):
        async with asyncio.timeout(2):
            await comm.wait()


async def test_a_first_message_whose_reader_task_never_ran_goes_back(
    layer: InMemoryChannelLayer,
) -> None:
    """The wait by hand got a message and started the reader task with it, but the consumer
    ended before that task's first step: the message goes back to the channel (where it
    expires, counted) instead of vanishing with the task."""
    comm = ApplicationCommunicator(Listener.as_asgi(), SCOPE)
    name = await channel_of(comm)
    await layer.send(name, {"type": "chat.message", "text": "in flight"})  # handed to the wait
    await comm.stop()  # its callback starts the task, which is cancelled before it runs
    outputs = []
    while not comm.output_queue.empty():
        outputs.append(comm.output_queue.get_nowait())
    if not outputs:  # not handled: then it must be back in the channel
        async with asyncio.timeout(2):
            assert (await layer.receive(name))["text"] == "in flight"
    else:
        assert [o["text"] for o in outputs] == ["in flight"]
