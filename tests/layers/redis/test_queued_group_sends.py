"""On a server's loop (the inbox reader runs), ``group_send`` queues its Redis part.

The call returns once this process's members have the message and the rest is queued, without
yielding; one flusher task sends the queue in order. Operations that could overtake a queued
group send wait for it; failures are counted and logged, not raised. Elsewhere (no reader on
the loop), ``group_send`` waits for Redis as before.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest

from channelworks.layers.redis import RedisChannelLayer, RedisUnavailable
from tests.layers.redis.conftest import MakeRedisLayer
from tests.layers.redis.servers import redis_server

pytestmark = pytest.mark.services


async def test_group_sends_in_a_row_do_not_yield_and_reach_another_process_in_order(
    make_redis_layer: MakeRedisLayer,
) -> None:
    sender = make_redis_layer()
    other = make_redis_layer()  # another process
    remote = await other.new_channel()
    await other.group_add("room", remote)
    await sender.new_channel()  # starts the sender's inbox reader: a server's loop
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    ticker = asyncio.create_task(tick())
    try:
        await asyncio.sleep(0.01)
        before = ticks
        for n in range(20):
            await sender.group_send("room", {"type": "chat", "n": n})
        assert ticks == before  # no other task ran between them
    finally:
        ticker.cancel()
    received = [(await asyncio.wait_for(other.receive(remote), 5))["n"] for _ in range(20)]
    assert received == list(range(20))


async def test_a_send_after_a_queued_group_send_comes_after_it(
    make_redis_layer: MakeRedisLayer,
) -> None:
    sender = make_redis_layer()
    worker = make_redis_layer()
    await sender.new_channel()  # reader running
    await sender.group_add("room", "workers")  # a normal channel
    await sender.group_send("room", {"type": "m", "n": 1})
    await sender.send("workers", {"type": "m", "n": 2})
    first = await asyncio.wait_for(worker.receive("workers"), 5)
    second = await asyncio.wait_for(worker.receive("workers"), 5)
    assert (first["n"], second["n"]) == (1, 2)


async def test_a_group_discard_after_a_queued_group_send_does_not_overtake_it(
    make_redis_layer: MakeRedisLayer,
) -> None:
    sender = make_redis_layer()
    other = make_redis_layer()
    remote = await other.new_channel()
    await sender.group_add("room", remote)  # a member of another process, added here
    await sender.new_channel()  # reader running
    await sender.group_send("room", {"type": "m", "n": 1})
    await sender.group_discard("room", remote)
    message = await asyncio.wait_for(other.receive(remote), 5)
    assert message["n"] == 1


async def test_close_sends_the_queued_group_sends_first(make_redis_layer: MakeRedisLayer) -> None:
    sender = make_redis_layer()
    other = make_redis_layer()
    remote = await other.new_channel()
    await other.group_add("room", remote)
    await sender.new_channel()  # reader running
    for n in range(50):
        await sender.group_send("room", {"type": "m", "n": n})
    await sender.close()
    received = [(await asyncio.wait_for(other.receive(remote), 5))["n"] for _ in range(50)]
    assert received == list(range(50))
    assert sender.stats.lost == 0


async def test_many_queued_group_sends_make_the_sender_wait(
    make_redis_layer: MakeRedisLayer,
) -> None:
    sender = make_redis_layer()
    other = make_redis_layer(capacity=5000)
    remote = await other.new_channel()
    await other.group_add("room", remote)
    await sender.new_channel()
    for n in range(2500):
        await sender.group_send("room", {"type": "m", "n": n})
        assert len(sender._queue) <= 1001
    received = [(await asyncio.wait_for(other.receive(remote), 5))["n"] for _ in range(2500)]
    assert received == list(range(2500))


async def test_without_the_reader_a_group_send_waits_and_raises_but_queued_ones_are_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with redis_server(tmp_path) as server:
        queued = RedisChannelLayer(hosts=[server.url], retry_timeout=0.3)
        fresh = RedisChannelLayer(hosts=[server.url], retry_timeout=0.3)
        try:
            await queued.new_channel()  # its reader runs on this loop
            server.stop()
            with caplog.at_level(logging.ERROR, logger="channelworks.layers.redis"):
                # never received: no reader, so it waits for Redis and raises, as before
                with pytest.raises(RedisUnavailable):
                    await fresh.group_send("lobby", {"type": "m"})
                errors = queued.stats.redis_errors
                await queued.group_send("lobby", {"type": "m"})  # returns: queued
                assert queued._queue
                await asyncio.wait_for(queued._settled(), 5)
            assert queued.stats.redis_errors == errors + 1
            assert any(
                record.levelno == logging.ERROR
                and "'lobby'" in record.getMessage()
                and "queued group_send" in record.getMessage()
                for record in caplog.records
            )
        finally:
            await queued.close()
            await fresh.close()


async def test_a_loop_ending_during_the_round_trip_does_not_send_a_group_send_twice(
    make_redis_layer: MakeRedisLayer,
) -> None:
    # asyncio.run cancels every task when its main coroutine returns: the flusher's round trip
    # is cut after the write, and Redis runs the script all the same.
    sender = make_redis_layer()
    other = make_redis_layer()
    remote = await other.new_channel()
    await other.group_add("room", remote)

    async def serve() -> None:
        await sender.new_channel()  # its reader runs on this loop: a server's loop
        await sender.group_send("room", {"type": "m", "n": 1})  # queued; the loop ends

    async def later() -> None:  # the same sender, on a loop of its own: comes after
        await sender.send(remote, {"type": "m", "n": 2})
        await sender.close()

    await asyncio.to_thread(asyncio.run, serve())
    await asyncio.to_thread(asyncio.run, later())
    first = await asyncio.wait_for(other.receive(remote), 5)
    second = await asyncio.wait_for(other.receive(remote), 5)
    assert (first["n"], second["n"]) == (1, 2)
    assert sender.stats.lost == 1  # the cut round trip: counted, as it may not have run


def _run_and_close_without_cancelling(main: Coroutine[Any, Any, None]) -> None:
    """``run_until_complete`` and ``close()``: a loop that ends without cancelling its tasks.

    The class's ``close`` is called, not the instance's: the layer makes an asyncio loop's
    ``close()`` end its home first, and these tests are about a loop that ended with no
    cleanup at all (a uvloop loop, whose ``close`` cannot be replaced)."""
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(main)
    finally:
        type(loop).close(loop)


# what else that loop left (the reader's sockets, never closed) only warns when collected
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_a_flusher_left_on_a_loop_closed_without_cancelling_it_does_not_upset_the_next(
    make_redis_layer: MakeRedisLayer,
) -> None:
    sender = make_redis_layer()
    other = make_redis_layer()
    remote = await other.new_channel()
    await other.group_add("room", remote)

    async def serve() -> None:
        await sender.new_channel()
        await sender.group_send("room", {"type": "m", "n": 0})
        # a send waiting for that group send when the loop is closed under it
        asyncio.get_running_loop().create_task(sender.send(remote, {"type": "m", "n": -1}))

    await asyncio.to_thread(_run_and_close_without_cancelling, serve())
    await sender.new_channel()  # this loop is the sender's home now
    lost = sender.stats.lost
    for n in range(1, 4):
        await sender.group_send("room", {"type": "m", "n": n})  # the first finds the old one
    assert sender.stats.lost == lost + 1  # what the old flusher held: counted
    gc.collect()  # the old flusher's coroutine is closed: its cleanup must leave these alone
    await sender.send(remote, {"type": "m", "n": 4})  # after the queued ones
    received: list[int] = []
    while not received or received[-1] != 4:
        received.append((await asyncio.wait_for(other.receive(remote), 5))["n"])
    assert [n for n in received if n > 0] == [1, 2, 3, 4]
    assert sender.stats.lost == lost + 1


async def test_a_flusher_cancelled_before_its_first_step_leaves_nobody_waiting(
    make_redis_layer: MakeRedisLayer,
) -> None:
    # asyncio.run cancels the tasks of a loop that ends, some of them before they ever ran: a
    # flusher made in that last iteration, say, while consumers' cleanup still runs.
    sender = make_redis_layer()
    await sender.new_channel()
    channel = await sender.new_channel()
    await sender.group_add("room", channel)
    await sender.group_send("room", {"type": "m"})  # queued: its flusher has not run yet
    flusher = sender._flusher
    assert flusher is not None
    flusher.cancel()
    await asyncio.gather(flusher, return_exceptions=True)
    await asyncio.wait_for(sender.group_discard("room", channel), 5)  # a consumer's cleanup
    assert sender.stats.lost == 1  # counted and logged, not left in the queue
    assert not sender._queue


async def test_an_unexpected_error_of_a_batch_is_counted_and_the_flusher_goes_on(
    make_redis_layer: MakeRedisLayer, caplog: pytest.LogCaptureFixture
) -> None:
    sender = make_redis_layer()
    other = make_redis_layer()  # another process
    remote = await other.new_channel()
    await other.group_add("room", remote)
    await sender.new_channel()  # starts the sender's inbox reader: a server's loop
    home = sender._links.home
    assert home is not None
    pipeline = home.pipelines[0]
    real_run = pipeline.run
    calls = 0

    async def failing_once(commands: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ValueError("boom")
        return await real_run(commands)

    pipeline.run = failing_once  # type: ignore[method-assign,assignment]
    with caplog.at_level(logging.ERROR, logger="channelworks.layers"):
        await sender.group_send("room", {"type": "chat", "n": 1})
        await asyncio.wait_for(sender.send(remote, {"type": "chat", "n": 2}), 5)
    assert sender.stats.lost == 1
    assert "'room'" in caplog.text
    assert "boom" in caplog.text
    await sender.group_send("room", {"type": "chat", "n": 3})
    received = [(await asyncio.wait_for(other.receive(remote), 5))["n"] for _ in range(2)]
    assert received == [2, 3]
