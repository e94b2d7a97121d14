"""Races and edge cases of the RabbitMQ layer, each a message that used to be lost or a call
that used to hang, against the RabbitMQ at 127.0.0.1:5672 (guest/guest)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import aiormq
import pytest

from channelworks.layers.rabbitmq import RabbitMQChannelLayer, names
from tests.layers.backends import (
    RABBITMQ_URL,
    delete_rabbitmq_names,
    rabbitmq_reachable,
    require_service,
)

MakeLayer = Callable[..., RabbitMQChannelLayer]


async def receive(layer: RabbitMQChannelLayer, channel: str, timeout: float = 5) -> dict[str, Any]:
    return await asyncio.wait_for(layer.receive(channel), timeout)


async def test_group_add_during_the_unbind_of_the_last_member_keeps_the_binding(
    make: MakeLayer,
) -> None:
    """One consumer leaves a room while another of the same process joins it (a page reload):
    the join must not be undone by the unbind still on its way to RabbitMQ."""
    owner, sender = make(), make()
    leaving, joining = await owner.new_channel(), await owner.new_channel()
    await owner.group_add("room", leaving)
    discard = asyncio.create_task(owner.group_discard("room", leaving))
    await asyncio.sleep(0)  # the discard now waits for RabbitMQ's unbind-ok
    await owner.group_add("room", joining)
    await discard
    await sender.new_channel()  # connected
    await sender.group_send("room", {"type": "still.here"})
    assert (await receive(owner, joining))["type"] == "still.here"


async def test_a_bind_finished_after_the_last_member_left_is_undone(make: MakeLayer) -> None:
    owner = make()
    channel = await owner.new_channel()
    add = asyncio.create_task(owner.group_add("brief", channel))
    await asyncio.sleep(0)  # the add now waits for RabbitMQ's bind-ok
    await owner.group_discard("brief", channel)
    await add
    assert owner.bindings.bound == set()  # no binding left behind without a member


async def test_a_member_that_rejoins_before_its_lapse_is_applied_stays(make: MakeLayer) -> None:
    """The sweep finds a lapsed member and drops it in the background; a ``group_add`` of the
    same channel in between must win."""
    owner, sender = make(group_expiry=60), make()
    channel = await owner.new_channel()
    await owner.group_add("lapsing", channel)
    owner.bindings.members["lapsing"][channel] = time.time() - 120  # unread for 2 minutes
    owner._sweep()  # found lapsed: dropped in the background, next iteration
    await owner.group_add("lapsing", channel)  # ... but it rejoins first
    await sender.new_channel()
    await sender.group_send("lapsing", {"type": "rejoined"})
    assert (await receive(owner, channel))["type"] == "rejoined"


async def test_group_send_then_send_to_an_own_member_keeps_order(make: MakeLayer) -> None:
    """With ``deliver_locally`` a send to an own channel is immediate; a group message to it
    sent earlier must not arrive after it (order per sender per channel)."""
    layer, other = make(), make()
    channel = await layer.new_channel()
    await layer.group_add("ordered", channel)
    remote = await other.new_channel()
    await other.group_add("ordered", remote)
    await layer.group_send("ordered", {"type": "m", "n": 1})
    await layer.send(channel, {"type": "m", "n": 2})
    assert [(await receive(layer, channel))["n"] for _ in range(2)] == [1, 2]
    assert (await receive(other, remote))["n"] == 1  # other processes still get it
    await layer.send(channel, {"type": "m", "n": 3})  # ... and it is not delivered twice
    assert (await receive(layer, channel))["n"] == 3


async def test_a_redelivered_flush_marker_does_not_flush_again(make: MakeLayer) -> None:
    """A connection that breaks before the flush marker is acknowledged delivers it again;
    it must not drop what was sent and joined after the flush."""
    layer, sender = make(), make()
    channel = await layer.new_channel()
    markers = 0
    again = asyncio.Event()
    handle = layer.reader.handle

    async def counting(body: bytes) -> None:
        nonlocal markers
        await handle(body)
        markers += body.startswith(names.FLUSH)
        if markers == 2:
            again.set()

    layer.reader.handle = counting  # type: ignore[method-assign]
    ack = layer.reader.ack
    layer.reader.ack = lambda channel, tag: None  # acknowledgements lost with the connection
    await layer.flush()
    await layer.group_add("after", channel)
    await layer.send(channel, {"type": "sent.after.flush"})
    layer.reader.ack = ack
    link = layer._link
    assert link is not None
    assert link.connection is not None
    await link.connection.close()  # RabbitMQ requeues the unacknowledged marker
    await asyncio.wait_for(again.wait(), 30)
    assert (await receive(layer, channel))["type"] == "sent.after.flush"
    await sender.new_channel()
    await sender.group_send("after", {"type": "group.after.flush"})
    assert (await receive(layer, channel))["type"] == "group.after.flush"


async def test_flush_after_a_normal_channel_queue_expired(make: MakeLayer, prefix: str) -> None:
    layer = make()
    await layer.send("short.lived", {"type": "m"})
    connection = await aiormq.connect(RABBITMQ_URL)  # RabbitMQ expires it unused (x-expires)
    try:
        await (await connection.channel()).queue_delete(f"{prefix}.chan.short.lived")
    finally:
        await connection.close()
    await layer.flush()
    await layer.send("short.lived", {"type": "again"})
    assert (await receive(layer, "short.lived"))["type"] == "again"


def test_a_call_from_another_loop_when_the_home_loop_stopped() -> None:
    """The home loop stopped without being closed (a finished ``run_until_complete``): a call
    from another loop used to be forwarded to it and wait forever."""
    require_service("RabbitMQ", rabbitmq_reachable())
    layer = RabbitMQChannelLayer(host=RABBITMQ_URL, prefix="test-stopped-home-loop")
    first = asyncio.new_event_loop()
    try:
        first.run_until_complete(layer.send("stopped.home", {"type": "m", "n": 1}))

        async def elsewhere() -> list[int]:
            await asyncio.wait_for(layer.send("stopped.home", {"type": "m", "n": 2}), 30)
            got = [(await receive(layer, "stopped.home"))["n"] for _ in range(2)]
            await layer.close()
            return got

        assert asyncio.run(elsewhere()) == [1, 2]
        first.run_until_complete(asyncio.sleep(0.1))  # the first link closes if it runs again
        link_tasks = [task for task in asyncio.all_tasks(first) if not task.done()]
        assert not [t for t in link_tasks if "rabbitmq-link" in t.get_name()]
    finally:
        first.close()
        asyncio.run(delete_rabbitmq_names(layer.prefix, [layer.names.channel("stopped.home")]))


@pytest.fixture(autouse=True)
def _quiet_aiormq(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("CRITICAL", logger="aiormq")
