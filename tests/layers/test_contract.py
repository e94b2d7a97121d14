"""The channel layer contract (docs/channel-layer-spec.md), run against every backend."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from asgiref.sync import async_to_sync

from channelworks.exceptions import (
    ChannelFull,
    InvalidChannelName,
    InvalidMessage,
    MessageTooLarge,
)
from channelworks.layers import BaseChannelLayer
from channelworks.layers.base import DEFAULT_MAX_MESSAGE_SIZE
from channelworks.layers.codec import Codec
from tests.layers.conftest import MakeLayer


@pytest.fixture
def layer(make_layer: MakeLayer) -> BaseChannelLayer:
    return make_layer()


async def receive(layer: BaseChannelLayer, channel: str, timeout: float = 2) -> dict[str, Any]:
    return await asyncio.wait_for(layer.receive(channel), timeout)


async def test_send_then_receive(layer: BaseChannelLayer) -> None:
    await layer.send("test.channel", {"type": "test.message", "text": "hi", "n": [1, 2]})
    assert await receive(layer, "test.channel") == {
        "type": "test.message",
        "text": "hi",
        "n": [1, 2],
    }


async def test_receive_waits_for_a_later_send(layer: BaseChannelLayer) -> None:
    channel = await layer.new_channel()
    waiting = asyncio.create_task(receive(layer, channel))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await layer.send(channel, {"type": "late.arrival"})
    assert (await waiting)["type"] == "late.arrival"


async def test_order_is_kept_per_sender_per_channel(layer: BaseChannelLayer) -> None:
    for n in range(50):
        await layer.send("ordered", {"type": "seq", "n": n})
    assert [(await receive(layer, "ordered"))["n"] for _ in range(50)] == list(range(50))


async def test_new_channel_is_unique_and_process_local(layer: BaseChannelLayer) -> None:
    names = {await layer.new_channel("chat") for _ in range(100)}
    assert len(names) == 100
    for name in names:
        assert name.startswith("chat.")
        assert "!" in name
        layer.require_valid_channel_name(name, receive=True)


async def test_process_local_channels_are_separate(layer: BaseChannelLayer) -> None:
    first, second = await layer.new_channel(), await layer.new_channel()
    await layer.send(first, {"type": "for.first"})
    await layer.send(second, {"type": "for.second"})
    assert (await receive(layer, second))["type"] == "for.second"
    assert (await receive(layer, first))["type"] == "for.first"


@pytest.mark.parametrize(
    "bad",
    ["", "has space", "ünïcode", "x" * 100, "two!bangs!", "bare.prefix!", "slash/no", 42, None],
)
async def test_bad_channel_name_raises_naming_it(layer: BaseChannelLayer, bad: Any) -> None:
    with pytest.raises(InvalidChannelName) as info:
        await layer.send(bad, {"type": "x"})
    assert info.value.name == bad
    assert repr(bad) in str(info.value)
    with pytest.raises(InvalidChannelName):
        await layer.receive(bad)
    with pytest.raises(InvalidChannelName):
        await layer.group_add("good", bad)


@pytest.mark.parametrize("bad", ["", "a!b", "sp ace", "x" * 100, 7])
async def test_bad_group_name_raises_naming_it(layer: BaseChannelLayer, bad: Any) -> None:
    for call in (
        layer.group_add(bad, "chan"),
        layer.group_discard(bad, "chan"),
        layer.group_send(bad, {"type": "x"}),
    ):
        with pytest.raises(InvalidChannelName) as info:
            await call
        assert info.value.name == bad


async def test_longest_valid_name_is_99(layer: BaseChannelLayer) -> None:
    name = "n" * 99
    await layer.send(name, {"type": "ok"})
    await layer.group_add(name, name)
    assert (await receive(layer, name))["type"] == "ok"


@pytest.mark.parametrize(
    "bad", [None, "text", ["type"], {}, {"type": 3}, {"type": ""}, {"type": "_private"}]
)
async def test_bad_message_raises(layer: BaseChannelLayer, bad: Any) -> None:
    with pytest.raises(InvalidMessage):
        await layer.send("chan", bad)
    with pytest.raises(InvalidMessage):
        await layer.group_send("group", bad)


async def test_full_channel_raises_channel_full(make_layer: MakeLayer) -> None:
    layer = make_layer(capacity=3)
    for n in range(3):
        await layer.send("small", {"type": "fill", "n": n})
    with pytest.raises(ChannelFull) as info:
        await layer.send("small", {"type": "fill", "n": 3})
    assert info.value.channel == "small"
    assert (await receive(layer, "small"))["n"] == 0
    await layer.send("small", {"type": "fill", "n": 3})  # room again after a receive


async def test_channel_capacity_patterns_override(make_layer: MakeLayer) -> None:
    layer = make_layer(capacity=2, channel_capacity={"big.*": 5})
    assert layer.get_capacity("big.one") == 5
    assert layer.get_capacity("small") == 2
    for n in range(5):
        await layer.send("big.one", {"type": "fill", "n": n})
    with pytest.raises(ChannelFull):
        await layer.send("big.one", {"type": "fill"})


async def test_undelivered_messages_expire(make_layer: MakeLayer) -> None:
    layer = make_layer(expiry=1)
    await layer.send("short.lived", {"type": "gone"})
    await asyncio.sleep(1.3)
    await layer.send("short.lived", {"type": "fresh"})
    assert (await receive(layer, "short.lived"))["type"] == "fresh"


async def test_group_send_reaches_every_member(layer: BaseChannelLayer) -> None:
    members = [await layer.new_channel() for _ in range(3)]
    for channel in members:
        await layer.group_add("room", channel)
    await layer.group_send("room", {"type": "chat.message", "text": "all"})
    for channel in members:
        assert (await receive(layer, channel))["text"] == "all"


async def test_group_add_twice_delivers_once(layer: BaseChannelLayer) -> None:
    channel = await layer.new_channel()
    await layer.group_add("room", channel)
    await layer.group_add("room", channel)
    await layer.group_send("room", {"type": "once"})
    await receive(layer, channel)
    with pytest.raises(TimeoutError):
        await receive(layer, channel, timeout=0.2)


async def test_group_discard_stops_delivery(layer: BaseChannelLayer) -> None:
    stay, leave = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("room", stay)
    await layer.group_add("room", leave)
    await layer.group_discard("room", leave)
    await layer.group_discard("room", "never.joined")
    await layer.group_send("room", {"type": "after.leave"})
    assert (await receive(layer, stay))["type"] == "after.leave"
    with pytest.raises(TimeoutError):
        await receive(layer, leave, timeout=0.2)


async def test_group_send_to_empty_group_is_quiet(layer: BaseChannelLayer) -> None:
    await layer.group_send("nobody.here", {"type": "void"})


async def test_group_send_skips_full_member_counts_and_logs(
    make_layer: MakeLayer, caplog: pytest.LogCaptureFixture
) -> None:
    layer = make_layer(capacity=1)
    full, free = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("room", full)
    await layer.group_add("room", free)
    await layer.send(full, {"type": "filler"})
    with caplog.at_level(logging.WARNING, logger="channelworks.layers"):
        await layer.group_send("room", {"type": "chat.message"})
    assert (await receive(layer, free))["type"] == "chat.message"
    assert (await receive(layer, full))["type"] == "filler"
    assert layer.stats.group_full == 1
    warning = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warning
    assert "room" in warning[0].getMessage()
    assert "chat.message" in warning[0].getMessage()


async def test_memberships_expire(make_layer: MakeLayer) -> None:
    layer = make_layer(group_expiry=1)
    channel = await layer.new_channel()
    await layer.group_add("room", channel)
    await asyncio.sleep(1.3)
    await layer.group_send("room", {"type": "too.late"})
    with pytest.raises(TimeoutError):
        await receive(layer, channel, timeout=0.2)


async def test_flush_drops_messages_and_groups(layer: BaseChannelLayer) -> None:
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "old"})
    await layer.group_add("room", channel)
    await layer.flush()
    await layer.group_send("room", {"type": "after.flush"})
    await layer.send(channel, {"type": "new"})
    assert (await receive(layer, channel))["type"] == "new"


async def test_cancelled_receive_loses_nothing(layer: BaseChannelLayer) -> None:
    channel = await layer.new_channel()
    for _ in range(20):
        waiting = asyncio.create_task(layer.receive(channel))
        await asyncio.sleep(0)
        await layer.send(channel, {"type": "precious"})
        waiting.cancel()
        results = await asyncio.gather(waiting, return_exceptions=True)
        if isinstance(results[0], dict):
            continue  # it was delivered before the cancel landed: fine
        assert (await receive(layer, channel))["type"] == "precious"


async def test_normal_channel_is_shared_between_readers(layer: BaseChannelLayer) -> None:
    got: list[list[int]] = [[], []]

    async def reader(index: int) -> None:
        while True:
            got[index].append((await layer.receive("work.queue"))["n"])
            await asyncio.sleep(0.001)

    readers = [asyncio.create_task(reader(i)) for i in range(2)]
    await asyncio.sleep(0.05)
    for n in range(40):
        await layer.send("work.queue", {"type": "job", "n": n})
    for _ in range(200):
        if len(got[0]) + len(got[1]) == 40:
            break
        await asyncio.sleep(0.01)
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    assert sorted(got[0] + got[1]) == list(range(40))
    assert got[0]
    assert got[1]


async def test_members_get_independent_messages(layer: BaseChannelLayer) -> None:
    first, second = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("room", first)
    await layer.group_add("room", second)
    await layer.group_send("room", {"type": "shared", "text": "same"})
    received = await receive(layer, first)
    received["text"] = "changed"
    assert (await receive(layer, second))["text"] == "same"


async def test_sender_may_reuse_its_message_dict(layer: BaseChannelLayer) -> None:
    message = {"type": "reused", "n": 1}
    await layer.send("reuse", message)
    message["n"] = 2
    assert (await receive(layer, "reuse"))["n"] == 1


async def test_usable_from_sync_code_with_async_to_sync(layer: BaseChannelLayer) -> None:
    channel = await layer.new_channel()
    await layer.group_add("sync.room", channel)

    def sync_caller() -> None:
        async_to_sync(layer.send)(channel, {"type": "from.sync"})
        async_to_sync(layer.group_send)("sync.room", {"type": "from.sync.group"})

    await asyncio.to_thread(sync_caller)
    assert (await receive(layer, channel))["type"] == "from.sync"
    assert (await receive(layer, channel))["type"] == "from.sync.group"


async def test_extensions_declare_groups_and_flush(layer: BaseChannelLayer) -> None:
    assert "groups" in layer.extensions
    assert "flush" in layer.extensions


async def test_receive_nowait_never_waits_and_never_loses(layer: BaseChannelLayer) -> None:
    channel = await layer.new_channel()
    assert layer.receive_nowait(channel) is None
    for n in range(3):
        await layer.send(channel, {"type": "queued", "n": n})
    got = []
    for _ in range(3):  # a backend may hold nothing locally: receive() then has it
        message = layer.receive_nowait(channel)
        got.append((message or await receive(layer, channel))["n"])
    assert got == [0, 1, 2]
    assert layer.receive_nowait(channel) is None


def sized(size: int, **extra: Any) -> dict[str, Any]:
    """A message whose msgpack encoding (unencrypted) is exactly ``size`` bytes."""
    codec = Codec()
    message: dict[str, Any] = {"type": "sized", **extra, "data": ""}
    message["data"] = "x" * (size - len(codec.encode(message)))
    # a str's header grows past 31 and 255 bytes: adjust until the total is exact
    while len(codec.encode(message)) > size:
        message["data"] = message["data"][:-1]
    assert len(codec.encode(message)) == size
    return message


@pytest.mark.parametrize("via", ["send", "group_send", "own channel"])
async def test_max_message_size_is_the_encoded_size_on_every_layer(
    make_layer: MakeLayer, via: str
) -> None:
    """The same limit on every backend: a message of exactly ``max_message_size`` encoded
    bytes is delivered, one byte more raises MessageTooLarge naming both, and nothing of it
    arrives."""
    layer = make_layer(max_message_size=2000)
    assert layer.max_message_size == 2000
    channel = await layer.new_channel() if via != "send" else "sized.normal"
    await layer.group_add("sized.room", channel)

    async def send(message: dict[str, Any]) -> None:
        if via == "group_send":
            await layer.group_send("sized.room", message)
        else:
            await layer.send(channel, message)

    with pytest.raises(MessageTooLarge, match=r"of 2001 bytes .* max_message_size of 2000"):
        await send(sized(2001, n=1))
    await send(sized(2000, n=2))
    got = await receive(layer, channel)
    assert got == sized(2000, n=2)
    assert layer.receive_nowait(channel) is None


async def test_max_message_size_defaults_to_one_mebibyte(make_layer: MakeLayer) -> None:
    layer = make_layer()
    assert layer.max_message_size == DEFAULT_MAX_MESSAGE_SIZE == 1024 * 1024
    with pytest.raises(MessageTooLarge):
        await layer.send("sized.default", sized(1024 * 1024 + 1))
    with pytest.raises(MessageTooLarge):
        await layer.group_send("sized.default", sized(1024 * 1024 + 1))


async def test_max_message_size_none_lifts_the_limit(make_layer: MakeLayer) -> None:
    layer = make_layer(max_message_size=None)
    channel = await layer.new_channel()
    await layer.send(channel, sized(1024 * 1024 + 100))
    assert len((await receive(layer, channel, timeout=10))["data"]) > 1024 * 1024


@pytest.mark.parametrize("bad", [0, -1, 1.5, "1024", True])
async def test_max_message_size_must_be_a_positive_int(make_layer: MakeLayer, bad: Any) -> None:
    with pytest.raises(ValueError, match="max_message_size"):
        make_layer(max_message_size=bad)


@pytest.mark.parametrize("big", [2**64, -(2**63) - 1, 10**30])
@pytest.mark.parametrize("via", ["send", "group_send"])
async def test_an_integer_beyond_64_bits_is_refused_saying_so(
    layer: BaseChannelLayer, via: str, big: int
) -> None:
    """msgpack cannot carry it: every layer refuses it at the sender, the in-memory layer
    too, with an error that says what is wrong; the limits themselves go through."""
    channel = await layer.new_channel()
    await layer.group_add("big.ints", channel)
    send = layer.send if via == "send" else layer.group_send
    target = channel if via == "send" else "big.ints"
    with pytest.raises(InvalidMessage, match="integer beyond 64 bits"):
        await send(target, {"type": "big.int", "nested": [{"n": big}]})
    await send(target, {"type": "big.int", "limits": [2**64 - 1, -(2**63)]})
    assert (await receive(layer, channel))["limits"] == [2**64 - 1, -(2**63)]
    assert layer.receive_nowait(channel) is None
