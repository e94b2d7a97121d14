"""RabbitMQ closes the layers' connections under traffic (``rabbitmqctl close_connection``).

Each layer's connection is closed by the broker, as an operator or a broker restart would;
the layers reconnect, redeclare their queue and bindings, and what was sent meanwhile is
delivered (at least once) or counted by its sender.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from typing import Any

import pytest

from channelworks.layers.rabbitmq import RabbitMQChannelLayer
from tests.layers.backends import require_service
from tests.layers.rabbitmq.conftest import MakeLayer

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
