"""The RabbitMQ layer's fast paths: hand-made frames, pipelined and batched publishes, local
delivery to its own channels, and lapsed memberships unbound by the sweep.

Frame and batch tests need no broker; the others use the RabbitMQ at 127.0.0.1:5672.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from pamqp import body as pamqp_body
from pamqp import commands as spec
from pamqp import frame as pamqp_frame
from pamqp import header as pamqp_header

from channelworks.exceptions import ChannelFull
from channelworks.layers.rabbitmq import RabbitMQChannelLayer, RabbitMQUnavailable, frames, names
from channelworks.layers.rabbitmq.connection import ACKED, NACKED
from channelworks.layers.rabbitmq.groups import Memberships
from channelworks.layers.rabbitmq.layer import _Batch

MakeLayer = Callable[..., RabbitMQChannelLayer]


# -- frames and batches (no broker) -----------------------------------------------------------


def pamqp_publish(
    channel: int, exchange: str, key: str, mandatory: bool, body: bytes, message_id: str | None
) -> bytes:
    properties = spec.Basic.Properties(message_id=message_id)
    parts = [
        pamqp_frame.marshal(
            spec.Basic.Publish(exchange=exchange, routing_key=key, mandatory=mandatory), channel
        ),
        pamqp_frame.marshal(pamqp_header.ContentHeader(0, len(body), properties), channel),
    ]
    return b"".join(parts)


@pytest.mark.parametrize("mandatory", [True, False])
@pytest.mark.parametrize("message_id", ["17", None])
def test_publish_frames_are_pamqps(mandatory: bool, message_id: str | None) -> None:
    body = b"s 1 2 chan\n" + b"x" * 300
    made = frames.publish(
        7,
        "ex.groups",
        "asgi.proc.abc",
        mandatory,
        body,
        None if message_id is None else message_id.encode(),
        131072,
    )
    expected = pamqp_publish(7, "ex.groups", "asgi.proc.abc", mandatory, body, message_id)
    expected += pamqp_frame.marshal(pamqp_body.ContentBody(body), 7)
    assert made == expected


def test_a_long_body_is_split_at_frame_max() -> None:
    body = bytes(range(256)) * 3  # 768 bytes in frames of at most 100 - 8
    made = frames.publish(1, "", "q", True, body, b"1", 100)
    expected = pamqp_publish(1, "", "q", True, body, "1")
    for start in range(0, len(body), 92):
        expected += pamqp_frame.marshal(pamqp_body.ContentBody(body[start : start + 92]), 1)
    assert made == expected


def test_ack_frame_is_pamqps() -> None:
    for multiple in (True, False):
        expected = pamqp_frame.marshal(spec.Basic.Ack(delivery_tag=2**40, multiple=multiple), 3)
        assert frames.ack(3, 2**40, multiple) == expected


def test_a_routing_key_over_255_bytes_is_refused() -> None:
    with pytest.raises(ValueError, match="routing key"):
        frames.publish(1, "", "k" * 256, False, b"x", None, 131072)


def test_batch_records_round_trip() -> None:
    bodies = [b"s 1 2 a!1\npayload", b"j 1 0 g a!1\n", b"", b"s 1 2 a!2\n" + b"\n" * 5]
    assert names.records(names.batch(bodies)) == bodies
    assert names.records(b"s 1 2 a!1\nplain") == [b"s 1 2 a!1\nplain"]
    with pytest.raises(ValueError, match="cut short"):
        names.records(names.batch(bodies)[:-3])


async def test_a_batch_outcome_is_every_senders() -> None:
    loop = asyncio.get_running_loop()
    for result in (ACKED, NACKED):
        batch = _Batch("send", "x")
        futures = [loop.create_future() for _ in range(3)]
        for future in futures:
            batch.add(b"body", future)
        futures[1].cancel()  # a caller that gave up is skipped
        outcome: asyncio.Future[int] = loop.create_future()
        outcome.set_result(result)
        batch.settle(outcome)
        assert [futures[0].result(), futures[2].result()] == [result, result]
    batch = _Batch("send", "x")
    future = loop.create_future()
    batch.add(b"body", future)
    failed: asyncio.Future[int] = loop.create_future()
    failed.set_exception(RabbitMQUnavailable("send", "x", "host", "no connection"))
    batch.settle(failed)
    with pytest.raises(RabbitMQUnavailable):
        future.result()


def test_memberships_scan_only_when_a_member_may_have_lapsed() -> None:
    now = [1000.0]
    members = Memberships(10, clock=lambda: now[0])
    members.add("g", "a!1")
    members.add("g", "a!2")
    assert members.next_due() == 0.0  # never scanned: due at once
    assert members.lapsed("g", 1001) == []
    assert members.next_due() == 1010.0  # the earliest join + group_expiry
    now[0] = 1008.0
    members.read("a!2")
    assert members.due(1009) == []
    assert members.lapsed("g", 1011) == ["a!1"]  # a!2 was read at 1008
    assert members.next_due() == 1018.0
    assert members.lapsed("g", 1019) == ["a!2"]
    assert members.next_due() is None
    assert not members.wanted("g")


# -- with the broker --------------------------------------------------------------------------


async def test_concurrent_sends_are_batched_pipelined_and_ordered(make: MakeLayer) -> None:
    """Fifty tasks send at once to two processes: the sends of one loop iteration to one
    process travel as one message, both processes' publishes are in flight together (none
    waits for another's confirm), and each task's messages arrive in its order."""
    sender, first, second = make(), make(capacity=5000), make(capacity=5000)
    targets = [await first.new_channel(), await second.new_channel()]
    await sender.new_channel()  # connected
    link = sender._link
    assert link is not None
    publishes = 0
    most_in_flight = 0
    publish_now = link.publish_now

    def counting(*args: Any, **kwargs: Any) -> asyncio.Future[int]:
        nonlocal publishes, most_in_flight
        publishes += 1
        outcome = publish_now(*args, **kwargs)
        most_in_flight = max(most_in_flight, len(link._inflight))
        return outcome

    link.publish_now = counting  # type: ignore[method-assign]

    async def task(number: int) -> None:
        for n in range(20):
            await sender.send(targets[number % 2], {"type": "m", "task": number, "n": n})

    await asyncio.gather(*(task(number) for number in range(50)))
    got: dict[int, list[int]] = {}
    for layer, target in zip((first, second), targets, strict=True):
        for _ in range(500):
            message = await asyncio.wait_for(layer.receive(target), 5)
            got.setdefault(message["task"], []).append(message["n"])
    assert got == {number: list(range(20)) for number in range(50)}
    assert publishes < 1000 / 5  # batched: 25 sends per target per iteration, about
    assert most_in_flight >= 2  # pipelined


async def test_own_channel_sends_skip_the_broker() -> None:
    """No broker at all (port 1): a send to the layer's own channel is delivered in memory,
    as a copy, with ChannelFull at capacity; a send elsewhere still needs the broker."""
    layer = RabbitMQChannelLayer(
        host="amqp://guest:guest@127.0.0.1:1/", retry_timeout=0.2, capacity=2
    )
    try:
        channel = await layer.new_channel()
        message: dict[str, Any] = {"type": "local", "items": [1]}
        await layer.send(channel, message)
        message["items"].append(2)
        await layer.send(channel, {"type": "local", "items": []})
        with pytest.raises(ChannelFull):
            await layer.send(channel, {"type": "one too many"})
        assert (await asyncio.wait_for(layer.receive(channel), 2))["items"] == [1]
        with pytest.raises(RabbitMQUnavailable):
            await layer.send("elsewhere.abc!1", {"type": "remote"})
    finally:
        await layer.close()


def bindings_of(queue: str) -> list[str]:
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        pytest.skip("rabbitmqctl is not installed")
    done = subprocess.run(
        [ctl, "list_bindings", "-q", "destination_name", "routing_key"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"rabbitmqctl list_bindings failed: {done.stderr!r}")
    rows = (line.split("\t") for line in done.stdout.splitlines())
    return [row[1] for row in rows if len(row) == 2 and row[0] == queue]


async def test_a_lapsed_membership_is_unbound_without_a_group_message(make: MakeLayer) -> None:
    layer = make(group_expiry=1)
    kept, lapsing = await layer.new_channel(), await layer.new_channel()
    reader = asyncio.create_task(layer.receive(kept))  # waiting: alive
    await layer.group_add("lapses", lapsing)
    await layer.group_add("stays", kept)
    assert layer.bindings.bound == {"lapses", "stays"}
    for _ in range(200):
        if "lapses" not in layer.bindings.bound:
            break
        await asyncio.sleep(0.05)
    assert "lapses" not in layer.bindings.bound
    assert layer.bindings.wanted("stays")
    assert sorted(await asyncio.to_thread(bindings_of, layer.queue)) == ["stays", layer.queue]
    reader.cancel()
    await asyncio.gather(reader, return_exceptions=True)
