"""Sync handlers in the shared worker pool (consumers/sync_pool.py): what user code can see.

Sends from a handler are handed to the loop without waiting; these tests pin what that must
not change: order, nothing lost, errors still reach the consumer, a handler that blocks after
sending is heard, handlers of one consumer never overlap, and the consumer's next message
waits for the sends of the last one.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import threading
from typing import Any, ClassVar

import pytest
from asgiref.sync import async_to_sync

from channelworks.consumers import SyncConsumer, WebsocketConsumer, sync_pool
from channelworks.consumers.turns import TaskCount
from channelworks.layers import InMemoryChannelLayer, channel_layers
from channelworks.testing import ApplicationCommunicator, WebsocketCommunicator
from channelworks.types import Message

SCOPE = {"type": "test"}


class Sender(SyncConsumer):
    overlaps: ClassVar[list[str]] = []
    inside = 0

    def burst(self, event: Message) -> None:
        for index in range(event["count"]):
            self.send({"type": "out", "index": index})

    def send_then_wait(self, event: Message) -> None:
        self.send({"type": "out", "text": "before the wait"})
        if not event["gate"].wait(5):
            raise AssertionError("the test never heard the message sent before the wait")
        self.send({"type": "out", "text": "after the wait"})

    def count_overlap(self, event: Message) -> None:
        self.inside += 1
        if self.inside != 1:
            Sender.overlaps.append(event["text"])
        threading.Event().wait(0.001)
        self.inside -= 1
        self.send({"type": "out", "text": event["text"]})

    def boom(self, event: Message) -> None:
        self.send({"type": "out", "text": "sent first"})
        raise ValueError("sync handler exploded")

    def count_holders(self, event: Message) -> None:
        # The loop is held still (it cannot take the sends meanwhile): how many tuples hold
        # this consumer before and after eight sends are handed over?
        loop, held, release = event["loop"], threading.Event(), threading.Event()

        def hold() -> None:
            held.set()
            release.wait(5)

        loop.call_soon_threadsafe(hold)
        held.wait(5)
        try:
            before = sum(isinstance(o, tuple) for o in gc.get_referrers(self))
            for index in range(8):
                self.send({"type": "out", "index": index})
            after = sum(isinstance(o, tuple) for o in gc.get_referrers(self))
        finally:
            release.set()
        self.send({"type": "out", "holders": after - before})

    def from_a_thread(self, event: Message) -> None:
        # not the handler's own thread: this send waits until the loop has sent it
        thread = threading.Thread(target=self.send, args=({"type": "out", "text": "thread"},))
        thread.start()
        thread.join(5)


async def test_sends_of_one_handler_arrive_in_order_past_the_bound() -> None:
    count = sync_pool.MAX_AHEAD * 4  # past the bound, the handler's sends wait for the loop
    async with ApplicationCommunicator(Sender.as_asgi(), SCOPE) as comm:
        await comm.send_input({"type": "burst", "count": count})
        got = [await comm.receive_output() for _ in range(count)]
        assert [message["index"] for message in got] == list(range(count))
        assert await comm.receive_nothing()


async def test_a_handlers_sends_wait_for_the_loop_in_no_object_of_their_own() -> None:
    # A room's burst hands thousands of sends over; an object per send that holds the
    # consumer (a tracked tuple) lives until it is sent, and every collection visits it.
    async with ApplicationCommunicator(Sender.as_asgi(), SCOPE) as comm:
        await comm.send_input({"type": "count.holders", "loop": asyncio.get_running_loop()})
        got = [await comm.receive_output() for _ in range(9)]
        assert [message.get("index") for message in got[:8]] == list(range(8))
        assert got[8]["holders"] == 0


async def test_a_message_sent_before_a_handler_blocks_is_delivered_meanwhile() -> None:
    gate = threading.Event()
    async with ApplicationCommunicator(Sender.as_asgi(), SCOPE) as comm:
        await comm.send_input({"type": "send.then.wait", "gate": gate})
        assert await comm.receive_output(timeout=3) == {"type": "out", "text": "before the wait"}
        gate.set()
        assert await comm.receive_output(timeout=3) == {"type": "out", "text": "after the wait"}


async def test_handlers_of_one_consumer_never_overlap_while_many_share_the_pool() -> None:
    Sender.overlaps = []
    comms = [ApplicationCommunicator(Sender.as_asgi(), SCOPE) for _ in range(20)]
    try:
        for number in range(10):
            for index, comm in enumerate(comms):
                await comm.send_input({"type": "count.overlap", "text": f"{index}-{number}"})
        for index, comm in enumerate(comms):
            got = [(await comm.receive_output(timeout=10))["text"] for _ in range(10)]
            assert got == [f"{index}-{number}" for number in range(10)]  # in order, each once
        assert Sender.overlaps == []
    finally:
        for comm in comms:
            await comm.stop()


async def test_an_exception_leaves_the_consumer_after_what_it_sent() -> None:
    comm = ApplicationCommunicator(Sender.as_asgi(), SCOPE)
    await comm.send_input({"type": "boom"})
    assert await comm.receive_output() == {"type": "out", "text": "sent first"}
    with pytest.raises(ValueError, match="sync handler exploded"):
        await comm.wait()


async def test_a_send_that_fails_fails_the_handler_and_drops_what_followed() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        if message["index"] == 1:
            raise OSError("the client went away")
        sent.append(message)

    queue: asyncio.Queue[Message] = asyncio.Queue()
    await queue.put({"type": "burst", "count": 3})
    with pytest.raises(OSError, match="the client went away"):
        await asyncio.wait_for(Sender()(SCOPE, queue.get, send), 5)
    assert [message["index"] for message in sent] == [0]


async def test_a_send_from_another_thread_still_waits_and_arrives() -> None:
    async with ApplicationCommunicator(Sender.as_asgi(), SCOPE) as comm:
        await comm.send_input({"type": "from.a.thread"})
        assert await comm.receive_output(timeout=3) == {"type": "out", "text": "thread"}


VARIABLE: contextvars.ContextVar[str] = contextvars.ContextVar("VARIABLE", default="unset")


class Room(WebsocketConsumer):
    """Channels' tutorial room: async_to_sync around the layer, a plain ``chat_message``."""

    def connect(self) -> None:
        assert self.channel_layer is not None
        assert self.channel_name is not None
        async_to_sync(self.channel_layer.group_add)("room", self.channel_name)
        self.accept()

    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        message = {"type": "chat.message", "text": text_data}
        assert self.channel_layer is not None
        async_to_sync(self.channel_layer.group_send)("room", message)

    def chat_message(self, event: dict[str, Any]) -> None:
        self.send(text_data=f"{event['text']} ({VARIABLE.get()})")


@pytest.fixture
def memory_layer() -> None:
    channel_layers.set("default", InMemoryChannelLayer())  # the suite resets the layers


@pytest.mark.usefixtures("memory_layer")
async def test_the_tutorial_room_delivers_every_message_in_order_to_everyone() -> None:
    VARIABLE.set("the connecting task's")
    members = [WebsocketCommunicator(Room.as_asgi(), "/room") for _ in range(5)]
    try:
        for member in members:
            connected, _ = await member.connect()
            assert connected
        for number in range(20):
            await members[0].send_to(text_data=f"m{number}")
        for member in members:
            got = [await member.receive_from(timeout=5) for _ in range(20)]
            # the handler sees the context the consumer runs in (a copy of it)
            assert got == [f"m{number} (unset)" for number in range(20)]
    finally:
        for member in members:
            await member.disconnect()


async def test_a_task_async_to_sync_makes_for_a_thread_gives_no_turn() -> None:
    loop = asyncio.get_running_loop()
    count = TaskCount.of(loop)

    async def nothing() -> int:
        return 7

    before = count.created
    assert await loop.run_in_executor(None, async_to_sync(nothing)) == 7
    assert count.created == before  # the thread waited for it: it ended before the thread did
    task = loop.create_task(nothing())
    assert count.created == before + 1  # any other task still counts
    assert await task == 7


def test_a_forked_child_gets_a_pool_of_its_own() -> None:
    import os

    parent = sync_pool._the_pool()
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        fresh = sync_pool._the_pool()
        os.write(writer, b"new" if fresh is not parent and fresh.threads == 0 else b"old")
        os._exit(0)
    os.close(writer)
    _, status = os.waitpid(child, 0)
    assert os.read(reader, 3) == b"new"
    assert status == 0
    assert sync_pool._the_pool() is parent


class Queued(SyncConsumer):
    """Records, across consumers, the order in which its handlers ran."""

    order: ClassVar[list[str]] = []

    def hello(self, event: Message) -> None:
        self.send({"type": "name", "name": self.channel_name})

    def delivery(self, event: Message) -> None:
        Queued.order.append(event["text"])
        threading.Event().wait(0.001)

    def frame(self, event: Message) -> None:  # from the server
        Queued.order.append("frame")
        self.send({"type": "out", "text": "frame"})

    def wait_for_loop(self, event: Message) -> None:
        async_to_sync(event["until"].wait)()  # an asyncio.Event the test sets
        self.send({"type": "out", "text": "waited"})

    def quick(self, event: Message) -> None:
        self.send({"type": "out", "text": "quick"})


async def name_of(comm: ApplicationCommunicator) -> str:
    await comm.send_input({"type": "hello"})
    name: str = (await comm.receive_output())["name"]
    return name


async def handled(count: int) -> None:
    """Until ``Queued.order`` holds ``count`` entries (5 s at most)."""
    for _ in range(500):
        if len(Queued.order) >= count:
            return
        await asyncio.sleep(0.01)


async def reading(comms: list[ApplicationCommunicator], warmed: int) -> list[str]:
    """The channels of ``comms``; the first ``warmed`` have handled a layer message, so their
    reader's task runs and the next message wakes it at once. ``Queued.order`` is empty."""
    Queued.order = []
    names = [await name_of(comm) for comm in comms]
    layer = channel_layers["default"]
    for name in names[:warmed]:
        await layer.send(name, {"type": "delivery", "text": "warm-up"})
    await handled(warmed)
    Queued.order = []
    return names


@pytest.mark.usefixtures("memory_layer")
async def test_a_server_event_is_not_queued_behind_layer_messages_of_others() -> None:
    layer = channel_layers["default"]
    comms = [ApplicationCommunicator(Queued.as_asgi(), SCOPE) for _ in range(31)]
    try:
        names = await reading(comms, 30)
        for index, name in enumerate(names[:30]):  # 30 calls queued before the frame's, ~1 ms
            await layer.send(name, {"type": "delivery", "text": f"d{index}"})
        await comms[30].send_input({"type": "frame"})
        assert (await comms[30].receive_output(timeout=5))["text"] == "frame"
        await handled(31)
        assert sorted(Queued.order) == sorted(["frame", *(f"d{n}" for n in range(30))])
        assert Queued.order.index("frame") < 10  # taken before most of them, not last
    finally:
        for comm in comms:
            await comm.stop()


@pytest.mark.usefixtures("memory_layer")
async def test_a_server_event_hurries_its_own_consumers_queued_layer_call() -> None:
    # The tutorial's room: the sender's own copy of its last message is queued behind the
    # others' (nothing waited for its turn then); its next frame waits for that call, which is
    # then taken first, and the frame soon after it.
    layer = channel_layers["default"]
    comms = [ApplicationCommunicator(Queued.as_asgi(), SCOPE) for _ in range(31)]
    try:
        names = await reading(comms, 31)
        for index, name in enumerate(names[:30]):  # 30 calls queued, ~1 ms each
            await layer.send(name, {"type": "delivery", "text": f"d{index}"})
        await layer.send(names[30], {"type": "delivery", "text": "own"})  # queued last
        pool = sync_pool._the_pool()
        for _ in range(10_000):  # until its reader has queued the call (not a fixed count)
            if any(call.args[1:] and call.args[1].get("text") == "own" for call in pool.queue):
                break
            await asyncio.sleep(0)
        await comms[30].send_input({"type": "frame"})
        assert (await comms[30].receive_output(timeout=5))["text"] == "frame"
        await handled(32)
        assert sorted(Queued.order) == sorted(["own", "frame", *(f"d{n}" for n in range(30))])
        # in turn, and taken before most of the others' calls, not last
        assert Queued.order.index("own") < Queued.order.index("frame") < 10
    finally:
        for comm in comms:
            await comm.stop()


@pytest.mark.usefixtures("memory_layer")
async def test_a_handler_waiting_in_async_to_sync_does_not_hold_back_others() -> None:
    until = asyncio.Event()
    async with (
        ApplicationCommunicator(Queued.as_asgi(), SCOPE) as waiting,
        ApplicationCommunicator(Queued.as_asgi(), SCOPE) as other,
    ):
        await waiting.send_input({"type": "wait.for.loop", "until": until})
        await asyncio.sleep(0.05)  # its thread now waits in async_to_sync
        await other.send_input({"type": "quick"})
        # another worker takes the other consumer's call while the first still waits
        assert (await other.receive_output(timeout=3))["text"] == "quick"
        until.set()
        assert (await waiting.receive_output(timeout=3))["text"] == "waited"
