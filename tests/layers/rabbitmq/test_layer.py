"""What only the RabbitMQ layer does, against the RabbitMQ at 127.0.0.1:5672 (guest/guest).

The shared contract runs against it from tests/layers/test_contract.py; these cover processes,
connection loss, capacity and expiry in the receiving process, encryption and options.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from channelworks.exceptions import ChannelFull, InvalidChannelLayerError
from channelworks.layers import ChannelLayerManager
from channelworks.layers.rabbitmq import RabbitMQChannelLayer, names
from tests.layers.backends import RABBITMQ_URL

ROOT = Path(__file__).resolve().parents[3]
MakeLayer = Callable[..., RabbitMQChannelLayer]


async def receive(layer: RabbitMQChannelLayer, channel: str, timeout: float = 5) -> dict[str, Any]:
    return await asyncio.wait_for(layer.receive(channel), timeout)


# -- options ----------------------------------------------------------------------------------


def test_options_and_channels_rabbitmq_names() -> None:
    layer = RabbitMQChannelLayer(
        host="amqp://u:secret@broker:5672/vhost",
        local_capacity=7,
        remote_capacity=70,
        group_expiry=None,
        local_expiry=3,
        prefetch_count=5,
        groups_exchange="my-groups",
    )
    assert layer.capacity == 7 + 70
    assert layer.process_capacity == 70
    assert layer.group_expiry == 86400
    assert layer.prefetch_count == 5
    assert layer.groups_exchange == "my-groups"
    assert "secret" not in repr(layer)


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"hots": "amqp://x"}, TypeError),
        ({"host": "redis://127.0.0.1"}, ValueError),
        ({"prefix": "bad prefix"}, ValueError),
        ({"process_capacity": 0}, ValueError),
        ({"capacity": 0}, ValueError),
    ],
)
def test_bad_options_are_refused(options: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        RabbitMQChannelLayer(**options)


def test_channels_rabbitmq_settings_build_our_layer() -> None:
    manager = ChannelLayerManager()
    manager.configure(
        {
            "default": {
                "BACKEND": "channels_rabbitmq.core.RabbitmqChannelLayer",
                "CONFIG": {"host": RABBITMQ_URL, "local_capacity": 10, "remote_capacity": 50},
            },
            "typo": {
                "BACKEND": "channelworks.layers.rabbitmq.RabbitMQChannelLayer",
                "CONFIG": {"capacityy": 3},
            },
        }
    )
    layer = manager["default"]
    assert isinstance(layer, RabbitMQChannelLayer)
    assert (layer.capacity, layer.process_capacity) == (10 + 50, 50)
    with pytest.raises(InvalidChannelLayerError, match="capacityy"):
        manager.make_backend("typo")


# -- processes --------------------------------------------------------------------------------


async def test_two_os_processes_exchange_group_messages(make: MakeLayer, prefix: str) -> None:
    layer = make()
    mine = await layer.new_channel()
    await layer.group_add("room-back", mine)
    peer = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.layers.rabbitmq.peer",
        prefix,
        "room",
        "3",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert peer.stdout is not None
        theirs = (await asyncio.wait_for(peer.stdout.readline(), 30)).decode().strip()
        assert "!" in theirs
        got = []
        for n in range(3):
            await layer.group_send("room", {"type": "ping", "n": n, "reply": mine})
            direct, grouped = await receive(layer, mine), await receive(layer, mine)
            assert direct["pid"] == grouped["pid"] == peer.pid
            got.append((direct["n"], grouped["n"]))
        assert got == [(0, 0), (1, 1), (2, 2)]
        assert await asyncio.wait_for(peer.wait(), 30) == 0
    finally:
        if peer.returncode is None:
            peer.kill()
            await peer.wait()
    # the peer closed: its queue (and membership) is gone, a send to it is counted, not raised
    await layer.send(theirs, {"type": "too.late"})
    assert layer.stats.undeliverable == 1


async def test_normal_channel_is_shared_by_two_processes(make: MakeLayer) -> None:
    first, second, sender = make(), make(), make()
    got: dict[int, list[int]] = {0: [], 1: []}

    async def read(index: int, layer: RabbitMQChannelLayer) -> None:
        while True:
            got[index].append((await layer.receive("jobs"))["n"])

    readers = [asyncio.create_task(read(i, layer)) for i, layer in enumerate((first, second))]
    await asyncio.sleep(0.3)  # both consumers are up
    for n in range(200):
        await sender.send("jobs", {"type": "job", "n": n})
    for _ in range(500):
        if len(got[0]) + len(got[1]) >= 200:
            break
        await asyncio.sleep(0.01)
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    assert sorted(got[0] + got[1]) == list(range(200))
    assert got[0]
    assert got[1]


async def test_group_add_of_another_processes_channel(make: MakeLayer) -> None:
    owner, other = make(), make()
    channel = await owner.new_channel()
    await other.group_add("remote", channel)  # asks the owner to join it
    for _ in range(100):
        if "remote" in owner.bindings.bound:
            break
        await asyncio.sleep(0.02)
    await other.group_send("remote", {"type": "from.other"})
    assert (await receive(owner, channel))["type"] == "from.other"


async def test_idle_normal_reader_gives_back_what_it_buffered(make: MakeLayer) -> None:
    first, second = make(linger=0.2), make()
    for n in range(10):
        await second.send("handoff", {"type": "job", "n": n})
    assert (await receive(first, "handoff"))["n"] == 0  # first now holds a prefetch window
    await asyncio.sleep(0.6)  # ... and gives it back once idle
    assert [(await receive(second, "handoff"))["n"] for _ in range(9)] == list(range(1, 10))


# -- connection loss --------------------------------------------------------------------------


def close_all_connections() -> None:
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        pytest.skip("rabbitmqctl is not installed")
    done = subprocess.run(
        [ctl, "close_all_connections", "channelworks test: connection drop"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"rabbitmqctl close_all_connections failed: {done.stderr!r}")


async def test_connection_drop_mid_traffic_recovers_without_silent_loss(
    make: MakeLayer, caplog: pytest.LogCaptureFixture
) -> None:
    receiver, sender = make(), make()
    channel = await receiver.new_channel()
    await receiver.group_add("drop", channel)
    got: set[int] = set()
    normal: set[int] = set()

    async def read_own() -> None:
        while True:
            got.add((await receiver.receive(channel))["n"])

    async def read_normal() -> None:
        while True:
            normal.add((await receiver.receive("drop.jobs"))["n"])

    readers = [asyncio.create_task(read_own()), asyncio.create_task(read_normal())]
    total = 300
    with caplog.at_level(logging.WARNING, logger="channelworks.layers.rabbitmq"):
        for n in range(total):
            if n == total // 2:
                await asyncio.to_thread(close_all_connections)
            await sender.send(channel, {"type": "direct", "n": n})
            await sender.send("drop.jobs", {"type": "job", "n": n})
        await sender.group_send("drop", {"type": "direct", "n": total})
        for _ in range(1000):
            if len(got) > total and len(normal) == total:
                break
            await asyncio.sleep(0.01)
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    assert got == set(range(total + 1))  # at least once: duplicates allowed, no loss
    assert normal == set(range(total))
    assert receiver.stats.reconnects >= 1
    assert sender.stats.reconnects >= 1
    assert any("reconnected" in record.getMessage() for record in caplog.records)


async def test_send_without_broker_raises_unavailable_after_retry_timeout() -> None:
    from channelworks.layers.rabbitmq import RabbitMQUnavailable

    layer = RabbitMQChannelLayer(host="amqp://guest:guest@127.0.0.1:1/", retry_timeout=0.3)
    try:
        with pytest.raises(RabbitMQUnavailable) as info:
            await layer.send("nowhere", {"type": "lost"})
        assert info.value.operation == "send"
        assert "RabbitMQ" in str(info.value)
        assert layer.stats.unavailable == 1
    finally:
        await layer.close()


# -- capacity, expiry, encryption -------------------------------------------------------------


async def test_own_channel_overflow_then_counted_drop(
    make: MakeLayer, caplog: pytest.LogCaptureFixture
) -> None:
    receiver, sender = make(capacity=2), make(capacity=2)
    channel = await receiver.new_channel()
    with caplog.at_level(logging.WARNING, logger="channelworks.layers.rabbitmq"):
        for n in range(8):
            await sender.send(channel, {"type": "fill", "n": n})
        for _ in range(200):
            if receiver.stats.overflowed == 4:
                break
            await asyncio.sleep(0.01)
    # two in the buffer, two in overflow, four dropped: each counted, one line (aggregated)
    assert receiver.stats.overflowed == 4
    assert [(await receive(receiver, channel))["n"] for _ in range(4)] == [0, 1, 2, 3]
    lines = [r.getMessage() for r in caplog.records if "twice its capacity" in r.getMessage()]
    assert len(lines) == 1


async def test_full_process_queue_raises_channel_full(
    make: MakeLayer, prefix: str, leftovers: set[str]
) -> None:
    """A process that stops reading (here: stopped by SIGSTOP) fills its queue; then senders
    get ``ChannelFull`` from the broker's nack (``remote_capacity`` bounds the queue), and so
    does a ``group_add``/``group_discard`` of one of its channels, whose request could not be
    queued (it used to return as if the channel had joined)."""
    sender = make()
    peer = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.layers.rabbitmq.peer",
        prefix,
        "stopped",
        "0",
        "5",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert peer.stdout is not None
        theirs = (await asyncio.wait_for(peer.stdout.readline(), 30)).decode().strip()
        leftovers.add(f"{prefix}.proc.{names.process_of(theirs)}")  # it cannot delete it
        os.kill(peer.pid, signal.SIGSTOP)
        full = None
        for n in range(5000):  # its prefetch window, then five in its queue
            try:
                await sender.send(theirs, {"type": "fill", "n": n})
            except ChannelFull as exc:
                full = exc
                break
        assert full is not None
        assert full.channel == theirs
        with pytest.raises(ChannelFull):
            await sender.group_add("stopped-room", theirs)
        with pytest.raises(ChannelFull):
            await sender.group_discard("stopped-room", theirs)
    finally:
        peer.kill()
        await peer.wait()


async def test_expired_messages_are_dropped_and_counted(make: MakeLayer) -> None:
    layer = make(expiry=1)
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "stale"})
    await asyncio.sleep(1.3)
    await layer.send(channel, {"type": "fresh"})
    assert (await receive(layer, channel))["type"] == "fresh"
    assert layer.stats.expired == 1


async def test_encryption_round_trip_and_key_rotation(make: MakeLayer) -> None:
    old, new = "old-secret-" + "x" * 32, "new-secret-" + "y" * 32
    before = make(symmetric_encryption_keys=[old])
    rotating = make(symmetric_encryption_keys=[new, old])
    after = make(symmetric_encryption_keys=[new])
    channel = await rotating.new_channel()
    await before.send(channel, {"type": "secret", "n": 1})  # old key: still read
    await after.send(channel, {"type": "secret", "n": 2})  # new key
    assert [(await receive(rotating, channel))["n"] for _ in range(2)] == [1, 2]
    theirs = await before.new_channel()
    await after.send(theirs, {"type": "unreadable"})  # the old process lacks the new key
    await before.send(theirs, {"type": "readable"})
    assert (await receive(before, theirs))["type"] == "readable"
    assert before.stats.undecodable == 1
