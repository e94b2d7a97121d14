"""channels_rabbitmq's names and options under compat, and the behaviour its README promises.

Written from channels_rabbitmq 4's README and public API: the module users name in settings
and import (``channels_rabbitmq.core``), its options (``local_capacity``, ``remote_capacity``,
``local_expiry``, ``groups_exchange``, ``ssl_context``), the connection it hands out for job
queues (``carehare_connection`` / ``current_connection``), the log line a failed connection
leaves, and channel names of the shape its layer makes (``queue!name``).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import secrets
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiormq
import pytest

from channelworks.exceptions import ChannelFull, LayerClosed, StopConsumer
from channelworks.layers.rabbitmq import RabbitMQChannelLayer
from channelworks.layers.rabbitmq.errors import LoopBlocked
from tests.layers.backends import (
    RABBITMQ_URL,
    delete_rabbitmq_names,
    rabbitmq_reachable,
    require_service,
)

pytestmark = pytest.mark.services

MakeLayer = Callable[..., RabbitMQChannelLayer]


async def receive(layer: RabbitMQChannelLayer, channel: str) -> dict[str, Any]:
    return await asyncio.wait_for(layer.receive(channel), 5)


@pytest.fixture
async def make() -> AsyncIterator[MakeLayer]:
    """Layers under a test prefix built from channels_rabbitmq's class name; closed after."""
    require_service("RabbitMQ", rabbitmq_reachable())
    core = importlib.import_module("channels_rabbitmq.core")
    prefix = f"test-{secrets.token_hex(6)}"
    made: list[RabbitMQChannelLayer] = []

    def build(**options: Any) -> RabbitMQChannelLayer:
        layer: RabbitMQChannelLayer = core.RabbitmqChannelLayer(
            host=RABBITMQ_URL, prefix=prefix, **options
        )
        made.append(layer)
        return layer

    yield build
    for layer in made:
        await layer.close()
    await delete_rabbitmq_names(prefix, [layer.queue for layer in made])


def test_the_names_channels_rabbitmq_users_import() -> None:
    core = importlib.import_module("channels_rabbitmq.core")
    assert core.RabbitmqChannelLayer is RabbitMQChannelLayer
    assert core.ChannelFull is ChannelFull
    assert core.StopConsumer is StopConsumer
    assert core.ReconnectDelay > 0


async def test_a_channel_holds_local_plus_remote_capacity(make: MakeLayer) -> None:
    """README: ``local_capacity`` messages wait in memory, then ``remote_capacity`` more on
    RabbitMQ; only then does ``send`` raise ``ChannelFull``."""
    layer = make(local_capacity=1, remote_capacity=2)
    channel = await layer.new_channel()
    for n in range(3):
        await layer.send(channel, {"type": "m", "n": n})
    with pytest.raises(ChannelFull):
        await layer.send(channel, {"type": "m", "n": 3})
    assert [(await receive(layer, channel))["n"] for _ in range(3)] == [0, 1, 2]
    assert layer.process_capacity == 2


async def test_group_send_reaches_a_member_until_both_capacities_are_used(
    make: MakeLayer,
) -> None:
    layer = make(local_capacity=1, remote_capacity=1)
    channel = await layer.new_channel()
    await layer.group_add("room", channel)
    for n in range(3):  # the third is skipped (counted and logged), not raised
        await layer.group_send("room", {"type": "m", "n": n})
    assert [(await receive(layer, channel))["n"] for _ in range(2)] == [0, 1]
    assert layer.stats.group_full == 1


async def test_local_expiry_drops_a_message_that_waited_too_long_here(
    make: MakeLayer, caplog: pytest.LogCaptureFixture
) -> None:
    """README: a message held in memory longer than ``local_expiry`` may be dropped, and a
    warning is logged when messages expire locally."""
    caplog.set_level(logging.WARNING, "channelworks.layers.rabbitmq")
    layer = make(local_expiry=0.05)
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "stale"})
    await asyncio.sleep(0.2)
    await layer.send(channel, {"type": "fresh"})
    assert (await receive(layer, channel))["type"] == "fresh"
    assert layer.stats.expired == 1
    assert "1 message(s) expired locally" in caplog.text


async def test_channel_names_of_channels_rabbitmq_shape_go_between_processes(
    make: MakeLayer,
) -> None:
    """channels_rabbitmq's channels are ``queue!name``; with ``_queue_name`` set (as its tests
    do) those names belong to the layer, and another layer's send to one reaches it."""
    x, y = make(), make()
    x._queue_name, y._queue_name = f"x{secrets.token_hex(4)}", f"y{secrets.token_hex(4)}"
    mine = f"{y._queue_name}!1"
    await y.group_add("g", mine)  # connects y: its queue exists
    await x.send(mine, {"type": "direct"})
    await x.group_send("g", {"type": "grouped"})
    got = [(await receive(y, mine))["type"] for _ in range(2)]
    assert sorted(got) == ["direct", "grouped"]
    with pytest.raises(AssertionError):  # not x's to read, as in channels_rabbitmq
        await x.receive(mine)
    with pytest.raises(RuntimeError):
        y._queue_name = "too-late"


async def test_a_queue_left_with_other_options_is_used_as_it_is(make: MakeLayer) -> None:
    """A process queue declared earlier with another ``remote_capacity`` (a name given by
    hand, reused) no longer stops the layer from ever connecting."""
    name = f"q{secrets.token_hex(4)}"
    first = make(remote_capacity=1)
    first._queue_name = name
    await first.group_add("g", f"{name}!1")
    second = make(remote_capacity=5)
    second._queue_name = name
    await second.group_add("g", f"{name}!2")  # connected (RabbitMQUnavailable before)
    await first.close()


async def test_carehare_connection_publishes_to_a_job_queue(make: MakeLayer) -> None:
    """README: ``await get_channel_layer().carehare_connection`` then
    ``await connection.publish(b"task", routing_key="job_queue")``."""
    layer = make()
    queue = f"test-jobs-{secrets.token_hex(4)}"
    broker = await aiormq.connect(RABBITMQ_URL)
    try:
        control = await broker.channel()
        await control.queue_declare(queue)
        await control.queue_declare(
            queue + "-full", arguments={"x-max-length": 0, "x-overflow": "reject-publish"}
        )
        connection = await layer.carehare_connection
        await connection.publish(b"task", routing_key=queue)
        with pytest.raises(ChannelFull):  # the queue refuses it: the broker's nack
            await (await layer.current_connection).publish(b"task", routing_key=queue + "-full")
        got = await control.basic_get(queue, no_ack=True)
        assert got.body == b"task"
    finally:
        for name in (queue, queue + "-full"):
            await (await broker.channel()).queue_delete(name)
        await broker.close()


async def test_a_failed_connection_is_logged_as_channels_rabbitmq_logs_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    core = importlib.import_module("channels_rabbitmq.core")
    layer = core.RabbitmqChannelLayer(host="amqp://guest:guest@127.0.0.1:1/", retry_timeout=0.3)
    caplog.set_level(logging.WARNING, "channelworks.layers.rabbitmq")
    try:
        await asyncio.wait({layer.carehare_connection}, timeout=0.5)
    finally:
        await layer.close()
    assert "Failure connecting" in caplog.text
    assert "Retrying" in caplog.text


async def test_carehare_connection_refuses_another_event_loop(make: MakeLayer) -> None:
    """As in channels_rabbitmq: the connection belongs to the loop the layer runs on."""
    layer = make()
    await layer.carehare_connection

    async def elsewhere() -> object:
        return await layer.carehare_connection

    with pytest.raises(RuntimeError, match="another event loop"):
        await asyncio.to_thread(asyncio.run, elsewhere())


async def test_close_ends_a_receive_waiting_on_an_own_channel_with_stop_consumer(
    make: MakeLayer,
) -> None:
    """channels_rabbitmq's ``close()``: "all pending and future calls to receive() will raise
    StopConsumer"; ours raise ``LayerClosed``, a ``StopConsumer``."""
    layer = make()
    channel = await layer.new_channel()
    waiting = asyncio.create_task(layer.receive(channel))
    await asyncio.sleep(0.1)
    await layer.close()
    with pytest.raises(StopConsumer) as ended:
        await asyncio.wait_for(waiting, 2)
    assert isinstance(ended.value, LayerClosed)
    assert ended.value.channel == channel


async def test_a_closed_layer_stays_closed(make: MakeLayer) -> None:
    """After ``close()`` every call raises ``StopConsumer`` (``LayerClosed``) instead of
    connecting again; ``flush()`` and a second ``close()`` do nothing."""
    layer = make()
    channel = await layer.new_channel()
    await layer.group_add("g", channel)
    await layer.close()
    calls = {
        "send": layer.send(channel, {"type": "late"}),
        "receive": layer.receive(channel),
        "new_channel": layer.new_channel(),
        "group_add": layer.group_add("g", channel),
        "group_discard": layer.group_discard("g", channel),
        "group_send": layer.group_send("g", {"type": "late"}),
    }
    for operation, call in calls.items():
        with pytest.raises(StopConsumer) as refused:
            await call
        assert isinstance(refused.value, LayerClosed)
        assert refused.value.operation == operation
    with pytest.raises(StopConsumer):
        await layer.carehare_connection
    await layer.flush()
    await layer.close()
    assert layer._link is None  # nothing connected again


async def test_close_begun_before_other_calls_ends_them_all(make: MakeLayer) -> None:
    """channels_rabbitmq's "disconnect at the same time as everything": a ``close()`` begun
    while the layer connects, then every other call at once: none of them hangs, each raises
    ``StopConsumer``."""
    layer = make()
    layer._queue_name = f"x{secrets.token_hex(4)}"
    channel = f"{layer._queue_name}!1"
    starting = layer.carehare_connection
    await asyncio.sleep(0)
    results = await asyncio.wait_for(
        asyncio.gather(
            layer.close(),
            layer.send(channel, {"type": "hi"}),
            layer.group_add("g", channel),
            layer.group_send("g", {"type": "ghi"}),
            layer.group_discard("g", channel),
            layer.receive(channel),
            return_exceptions=True,
        ),
        5,
    )
    assert results[0] is None
    assert all(isinstance(result, StopConsumer) for result in results[1:]), results
    await asyncio.gather(starting, return_exceptions=True)


async def test_a_call_from_another_loop_while_the_home_loop_is_blocked_raises(
    make: MakeLayer,
) -> None:
    """channels_rabbitmq's test_multiple_event_loops: the home loop waits for a thread whose own
    loop calls the layer. We run such calls on the home loop, so this one could never run:
    it raises ``RuntimeError`` (``LoopBlocked``) after ``retry_timeout`` instead of hanging,
    and nothing of it is done, even once the home loop runs again."""
    layer = make(retry_timeout=0.3)
    channel = await layer.new_channel()
    raised: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(layer.send(channel, {"type": "from.thread"}))
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(10)  # blocks the home loop, as the peer's test does
    assert not thread.is_alive()
    assert len(raised) == 1
    assert isinstance(raised[0], RuntimeError)
    assert isinstance(raised[0], LoopBlocked)
    assert "The caller tried using channels_rabbitmq on a different event loop" in str(raised[0])
    await asyncio.sleep(0.1)  # the home loop runs what was handed to it: nothing
    assert layer.receive_nowait(channel) is None
    await layer.send(channel, {"type": "here"})
    assert (await receive(layer, channel))["type"] == "here"


async def test_a_call_from_another_loop_runs_on_the_home_loop_when_it_is_free(
    make: MakeLayer,
) -> None:
    """What channels_rabbitmq refuses, and a sync consumer's ``async_to_sync`` in a thread of
    its own needs: the call is run on the layer's loop, which is free to run it."""
    layer = make(retry_timeout=0.3)
    channel = await layer.new_channel()
    await asyncio.to_thread(asyncio.run, layer.send(channel, {"type": "from.thread"}))
    assert (await receive(layer, channel))["type"] == "from.thread"
