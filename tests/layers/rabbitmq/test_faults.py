"""Faults between the layers and RabbitMQ: connections closed by the broker under traffic
(``rabbitmqctl close_connection``), a process cut off through a TCP proxy (proxy.py), and its
queue lost meanwhile (a broker restart without it) or deleted under it.

The layers reconnect, redeclare their queue and bindings, and what was sent meanwhile is
delivered (at least once) or counted: by its sender, or by the process whose queue was lost.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiormq
import pytest

from channelworks.layers.rabbitmq import RabbitMQChannelLayer
from tests.layers.backends import RABBITMQ_URL, rabbitmq_reachable, require_service
from tests.layers.rabbitmq.conftest import MakeLayer
from tests.layers.rabbitmq.proxy import Proxy

pytestmark = pytest.mark.services


def close_connection_of(layer: RabbitMQChannelLayer) -> None:
    """Have the broker close ``layer``'s connection (found by its connection name)."""
    listed = subprocess.run(
        ["rabbitmqctl", "-q", "list_connections", "pid", "client_properties"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    name = f'"channelworks {layer.queue}"'
    pids = [line.split("\t")[0] for line in listed.splitlines() if name in line]
    assert len(pids) == 1, listed
    subprocess.run(
        ["rabbitmqctl", "-q", "close_connection", pids[0], "channelworks fault test"],
        capture_output=True,
        timeout=30,
        check=True,
    )


async def test_connections_closed_by_the_broker_lose_nothing_uncounted(make: MakeLayer) -> None:
    require_service("rabbitmqctl", shutil.which("rabbitmqctl") is not None)
    receiver = make()
    sender = make()
    channel = await receiver.new_channel()
    await receiver.group_add("room", channel)
    await sender.new_channel()  # a server's layer: its reader and connection run
    sent = 100

    async def traffic() -> None:
        for n in range(sent):
            await sender.send(channel, {"type": "direct", "n": n})
            await sender.group_send("room", {"type": "group", "n": n})
            await asyncio.sleep(0.01)

    got: dict[str, set[int]] = {"direct": set(), "group": set(), "after": set()}

    async def read() -> None:  # the consumer, reading all along
        while True:
            message: dict[str, Any] = await receiver.receive(channel)
            got[message["type"]].add(message["n"])

    reading = asyncio.create_task(read())
    running = asyncio.create_task(traffic())
    try:
        await asyncio.sleep(0.3)
        await asyncio.to_thread(close_connection_of, receiver)
        await asyncio.sleep(0.3)
        await asyncio.to_thread(close_connection_of, sender)
        await asyncio.wait_for(running, 30)
        for _ in range(200):  # bounded: what is on its way arrives
            if len(got["direct"]) == sent and len(got["group"]) + sender.stats.lost >= sent:
                break
            await asyncio.sleep(0.05)
        # The membership came back with the connection: the group still reaches the channel.
        await sender.group_send("room", {"type": "after", "n": 0})
        for _ in range(200):
            if got["after"]:
                break
            await asyncio.sleep(0.05)
    finally:
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)
    assert got["after"] == {0}
    assert got["direct"] == set(range(sent))  # awaited sends: each one arrived
    missing = sent - len(got["group"])
    assert missing == sender.stats.lost  # a group send not delivered is counted
    assert receiver.stats.group_full == receiver.stats.overflowed == 0
    assert receiver.stats.reconnects >= 1
    assert sender.stats.reconnects >= 1


@pytest.fixture
async def proxy() -> AsyncIterator[Proxy]:
    require_service("RabbitMQ", rabbitmq_reachable())
    through = await Proxy(RABBITMQ_URL).start()
    yield through
    await through.close()


async def delete_queue(name: str) -> None:
    """Delete a queue behind a layer's back (as a broker restart without it would)."""
    connection = await aiormq.connect(RABBITMQ_URL)
    try:
        await (await connection.channel()).queue_delete(name)
    finally:
        await connection.close()


async def eventually(check: Callable[[], bool]) -> bool:
    for _ in range(200):  # bounded: 10 s
        if check():
            return True
        await asyncio.sleep(0.05)
    return check()


async def test_group_sends_during_a_cut_reach_the_member_after_it(
    proxy: Proxy, make: MakeLayer
) -> None:
    """The receiving process is cut off (its queue survives): what is sent to it meanwhile
    waits in its queue and arrives once it is back, every message, in order."""
    receiver = make(host=proxy.url)
    sender = make()
    channel = await receiver.new_channel()
    await receiver.group_add("room", channel)
    await proxy.cut()
    for n in range(20):
        await sender.group_send("room", {"type": "gap", "n": n})
        await sender.send(channel, {"type": "direct", "n": n})
    await proxy.restore()
    got = [await asyncio.wait_for(receiver.receive(channel), 10) for _ in range(40)]
    assert [m["n"] for m in got if m["type"] == "gap"] == list(range(20))
    assert [m["n"] for m in got if m["type"] == "direct"] == list(range(20))
    assert await eventually(lambda: receiver.stats.reconnects >= 1)
    assert receiver.stats.queue_lost == 0


async def test_a_queue_lost_while_cut_off_is_counted_logged_and_rebuilt(
    proxy: Proxy, make: MakeLayer, caplog: pytest.LogCaptureFixture
) -> None:
    """A broker restarted without the process's queue (or the queue gone past
    ``process_timeout``): group sends published before the process is back have no queue to
    go to and are lost. The process finds its queue gone when it reconnects: it counts it
    (``stats.queue_lost``), logs it, and rebuilds its queue and bindings, so the group reaches
    its members again without anyone joining again."""
    caplog.set_level(logging.WARNING, "channelworks.layers.rabbitmq")
    receiver = make(host=proxy.url)
    sender = make()
    channel = await receiver.new_channel()
    await receiver.group_add("room", channel)
    await proxy.cut()
    await delete_queue(receiver.queue)
    for n in range(5):
        await sender.group_send("room", {"type": "gap", "n": n})  # no queue bound: lost
    await proxy.restore()
    # reconnects counts once the queue and its bindings are made again (queue_lost before)
    assert await eventually(lambda: receiver.stats.reconnects >= 1)
    assert receiver.stats.queue_lost == 1
    assert "was gone when it reconnected" in caplog.text
    await sender.group_send("room", {"type": "after", "n": 0})
    got = await asyncio.wait_for(receiver.receive(channel), 10)
    assert (got["type"], got["n"]) == ("after", 0)
    await sender.send(channel, {"type": "direct", "n": 1})
    assert (await asyncio.wait_for(receiver.receive(channel), 10))["type"] == "direct"


async def test_a_queue_deleted_under_a_live_layer_is_counted_logged_and_rebuilt(
    make: MakeLayer, caplog: pytest.LogCaptureFixture
) -> None:
    """RabbitMQ cancels the consumer of a deleted queue and the connection stays up: the layer
    notices at once (it used to read nothing from then on, silently), counts and logs the lost
    queue, and rebuilds it with its bindings."""
    caplog.set_level(logging.WARNING, "channelworks.layers.rabbitmq")
    receiver = make()
    sender = make()
    channel = await receiver.new_channel()
    await receiver.group_add("room", channel)
    await delete_queue(receiver.queue)
    # reconnects counts once the queue and its bindings are made again (queue_lost before)
    assert await eventually(lambda: receiver.stats.reconnects >= 1)
    assert receiver.stats.queue_lost == 1
    assert "was deleted" in caplog.text
    await sender.group_send("room", {"type": "after", "n": 0})
    assert (await asyncio.wait_for(receiver.receive(channel), 10))["type"] == "after"
