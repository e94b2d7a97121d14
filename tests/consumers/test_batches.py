"""Layer messages for sync handlers, several to a pool call (consumers/batches.py).

A batch must look, from user code, like the same messages handled one call each: in order,
each once, an error reported for its own message, a task a handler started run before the
next message, a server event not kept waiting behind the batch, and nothing dropped unseen
when the consumer ends in the middle of one.
"""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Callable
from typing import Any, ClassVar

import pytest
from asgiref.sync import async_to_sync

from channelworks.consumers import SyncConsumer, WebsocketConsumer, base, sync_pool
from channelworks.consumers.reader import LayerReader
from channelworks.layers import InMemoryChannelLayer, channel_layers
from channelworks.ops import connections
from channelworks.ops.connections import Observer, consumer_name
from channelworks.testing import ApplicationCommunicator, WebsocketCommunicator
from channelworks.types import Message

SCOPE = {"type": "test"}


class Worker(SyncConsumer):
    #: what happened, in order, across the threads and the loop
    seen: ClassVar[list[str]] = []
    failures: ClassVar[list[str]] = []

    def hello(self, event: Message) -> None:
        self.send({"type": "name", "name": self.channel_name})

    def job(self, event: Message) -> None:
        entered = event.get("entered")
        if entered is not None:
            entered.set()
        gate = event.get("gate")
        if gate is not None and not gate.wait(5):
            raise AssertionError("the test never opened the gate")
        if event.get("fail"):
            raise ValueError(event["text"])
        Worker.seen.append(event["text"])
        self.send({"type": "out", "text": event["text"], "thread": threading.get_ident()})

    async def note(self, event: Message) -> None:  # an async handler in a sync consumer
        Worker.seen.append(event["text"])
        await self.base_send({"type": "out", "text": event["text"]})

    def spawn(self, event: Message) -> None:
        Worker.seen.append(event["text"])

        async def start() -> None:
            asyncio.get_running_loop().create_task(mark())

        async def mark() -> None:
            Worker.seen.append("the task")

        async_to_sync(start)()
        self.send({"type": "out", "text": event["text"]})

    def ping(self, event: Message) -> None:  # from the server
        Worker.seen.append("ping")
        self.send({"type": "out", "text": "ping"})

    async def handle_exception(self, exc: Exception, message: Message) -> None:
        if not isinstance(exc, ValueError):
            raise exc
        Worker.failures.append(message["text"])


@pytest.fixture
def layer() -> InMemoryChannelLayer:
    Worker.seen, Worker.failures = [], []
    layer = InMemoryChannelLayer()
    channel_layers.set("default", layer)  # the suite resets the layers
    return layer


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Messages per pool call of a layer message: 1 for a call of its own, more for a batch."""
    sizes: list[int] = []
    single, batch = sync_pool.run_sync_handler, sync_pool.run_batch

    def one(
        consumer: Any, function: Callable[[Any, Any], Any], message: Any, first: bool = False
    ) -> Any:
        sizes.append(1)
        return single(consumer, function, message, first)

    def many(consumer: Any, function: Callable[[], None], messages: int, first: bool) -> Any:
        sizes.append(messages)
        return batch(consumer, function, messages, first)

    monkeypatch.setattr(base, "run_sync_handler", one)
    monkeypatch.setattr(base, "run_batch", many)
    return sizes


async def channel_of(comm: ApplicationCommunicator, calls: list[int] | None = None) -> str:
    """The consumer's channel (a server event's call, not counted in ``calls``)."""
    await comm.send_input({"type": "hello"})
    reply = await comm.receive_output()
    if calls is not None:
        calls.clear()
    name: str = reply["name"]
    return name


async def texts(comm: ApplicationCommunicator, count: int) -> list[str]:
    return [(await comm.receive_output(timeout=5))["text"] for _ in range(count)]


async def test_waiting_messages_go_in_one_call_in_order_each_once(
    layer: InMemoryChannelLayer, calls: list[int]
) -> None:
    async with ApplicationCommunicator(Worker.as_asgi(), SCOPE) as comm:
        name = await channel_of(comm, calls)
        for number in range(6):  # queued before the reader wakes: all waiting at once
            await layer.send(name, {"type": "job", "text": f"j{number}"})
        got = [await comm.receive_output(timeout=5) for _ in range(6)]
        assert [message["text"] for message in got] == [f"j{number}" for number in range(6)]
        assert len({message["thread"] for message in got}) == 1  # one call, one thread
        assert calls == [6]
        assert await comm.receive_nothing()


async def test_a_message_for_another_kind_of_handler_ends_the_batch_and_keeps_its_place(
    layer: InMemoryChannelLayer, calls: list[int]
) -> None:
    async with ApplicationCommunicator(Worker.as_asgi(), SCOPE) as comm:
        name = await channel_of(comm, calls)
        await layer.send(name, {"type": "job", "text": "first job"})  # the handler's cache
        assert await texts(comm, 1) == ["first job"]
        calls.clear()
        for kind, text in [("job", "a"), ("job", "b"), ("note", "c"), ("job", "d")]:
            await layer.send(name, {"type": kind, "text": text})
        assert await texts(comm, 4) == ["a", "b", "c", "d"]
        assert Worker.seen[1:] == ["a", "b", "c", "d"]
        assert calls == [2, 1]  # a and b together; c on the loop; d alone


async def test_an_error_is_handled_for_its_own_message_and_the_rest_follow(
    layer: InMemoryChannelLayer, calls: list[int]
) -> None:
    async with ApplicationCommunicator(Worker.as_asgi(), SCOPE) as comm:
        name = await channel_of(comm, calls)
        await layer.send(name, {"type": "job", "text": "a"})
        await layer.send(name, {"type": "job", "text": "b", "fail": True})
        await layer.send(name, {"type": "job", "text": "c"})
        await layer.send(name, {"type": "job", "text": "d"})
        assert await texts(comm, 3) == ["a", "c", "d"]
        assert Worker.failures == ["b"]
        assert calls[0] == 4  # the batch stopped at b; c and d went after its error


async def test_a_task_a_handler_started_runs_before_the_next_message(
    layer: InMemoryChannelLayer, calls: list[int]
) -> None:
    async with ApplicationCommunicator(Worker.as_asgi(), SCOPE) as comm:
        name = await channel_of(comm, calls)
        await layer.send(name, {"type": "spawn", "text": "first"})
        await layer.send(name, {"type": "spawn", "text": "second"})
        assert await texts(comm, 2) == ["first", "second"]
        assert Worker.seen[:3] == ["first", "the task", "second"]
        assert calls[0] == 2  # one batch of both, which stopped after the first


async def test_a_server_event_waits_for_one_message_of_a_batch_not_all(
    layer: InMemoryChannelLayer,
) -> None:
    gate = threading.Event()
    async with ApplicationCommunicator(Worker.as_asgi(), SCOPE) as comm:
        name = await channel_of(comm)
        await layer.send(name, {"type": "job", "text": "j0", "gate": gate})
        for number in range(1, 4):
            await layer.send(name, {"type": "job", "text": f"j{number}"})
        await asyncio.sleep(0.05)  # the batch runs, blocked in j0's handler
        await comm.send_input({"type": "ping"})
        await asyncio.sleep(0.05)  # the server's pump now waits for its turn
        gate.set()
        assert await texts(comm, 5) == ["j0", "ping", "j1", "j2", "j3"]


async def test_messages_a_batch_had_not_reached_go_back_when_the_consumer_ends(
    layer: InMemoryChannelLayer,
) -> None:
    gate, entered = threading.Event(), threading.Event()
    comm = ApplicationCommunicator(Worker.as_asgi(), SCOPE)
    name = await channel_of(comm)
    await layer.send(name, {"type": "job", "text": "j0", "gate": gate, "entered": entered})
    await layer.send(name, {"type": "job", "text": "j1"})
    await layer.send(name, {"type": "job", "text": "j2"})
    for _ in range(500):  # the batch runs, blocked in j0's handler
        if entered.is_set():
            break
        await asyncio.sleep(0.01)
    stopping = asyncio.ensure_future(comm.stop())
    await asyncio.sleep(0.05)
    gate.set()  # j0's handler runs to its end, as a call of its own would
    await stopping
    back = [layer.receive_nowait(name), layer.receive_nowait(name), layer.receive_nowait(name)]
    assert [message and message["text"] for message in back] == ["j1", "j2", None]
    for _ in range(100):  # the handler ends in its thread
        if Worker.seen:
            break
        await asyncio.sleep(0.01)
    assert Worker.seen == ["j0"]


class Member(WebsocketConsumer):
    groups: ClassVar[list[str]] = ["batched"]

    def job(self, event: Message) -> None:
        self.send(text_data=event["text"])


async def test_operators_see_each_message_of_a_batch_timed(
    layer: InMemoryChannelLayer, calls: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh = Observer()
    monkeypatch.setattr(connections, "_shared", fresh)
    connections.configure(True)
    try:
        comm = WebsocketCommunicator(Member.as_asgi(), "/")
        connected, _ = await comm.connect()
        assert connected
        for number in range(5):
            await layer.group_send("batched", {"type": "job", "text": f"j{number}"})
        assert [await comm.receive_from() for _ in range(5)] == [f"j{n}" for n in range(5)]
        await comm.disconnect()
        assert calls == [5]
        timing = fresh.consumer_timings[consumer_name(Member)]["job"]
        assert sum(timing.counts) == 5
        assert timing.sum > 0
    finally:
        connections.configure(None)


async def test_a_reader_that_never_batched_holds_no_queue_for_one(
    layer: InMemoryChannelLayer,
) -> None:
    # an empty deque is 760 bytes: per connection, that was a third of the memory budget
    async with ApplicationCommunicator(Worker.as_asgi(), SCOPE) as comm:
        name = await channel_of(comm)
        await layer.send(name, {"type": "job", "text": "alone"})
        assert await texts(comm, 1) == ["alone"]
        readers = [
            found
            for found in gc.get_objects()
            # type(), not isinstance(): a dead weakref.proxy among the objects raises
            if type(found) is LayerReader and found.name == name
        ]
        assert len(readers) == 1
        assert readers[0].pending is None
