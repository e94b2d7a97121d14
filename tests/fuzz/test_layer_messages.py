"""Layer messages of every shape through ``send``/``group_send``: the in-memory layer and the
Redis layer (real Redis; one process sends, another reads through its inbox).

Each message is either delivered equal or refused at the sender with a clear
``channelworks.exceptions`` error; a reader never drops one in silence and never stops.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis.asyncio
from hypothesis import event, given
from hypothesis import strategies as st

from channelworks.exceptions import (
    InvalidChannelName,
    InvalidMessage,
    MessageTooLarge,
)
from channelworks.layers import BaseChannelLayer, InMemoryChannelLayer
from channelworks.layers.codec import Codec, encoded_size
from channelworks.layers.names import require_message
from tests.fuzz.strategies import (
    channel_names,
    corrupted,
    foreign_values,
    fuzz_settings,
    group_names,
    layer_messages,
    same_value,
    wire_messages,
    wire_values,
)
from tests.layers.backends import REDIS_URL, rabbitmq, redis_reachable, require_service

GROUP = "fuzz-room"
#: a small limit, so that messages over it are cheap to make
MAX_SIZE = 4096
KEY = "a key of at least thirty-two bytes, for the fuzz tests"
#: seconds a delivered message may take to arrive; past it, it was dropped
PATIENCE = 5


def any_values() -> st.SearchStrategy[Any]:
    """Values of every kind, those msgpack carries and those it cannot, some big."""
    return st.one_of(
        wire_values(),
        foreign_values(),
        st.integers(min_value=0, max_value=2 * MAX_SIZE).map(lambda n: b"x" * n),
    )


@dataclass
class Route:
    """Where a fuzzed message goes: ``sender`` sends to ``channel`` (or to GROUP, whose member
    ``channel`` is) and ``reader`` receives it."""

    sender: BaseChannelLayer
    reader: BaseChannelLayer
    channel: str


#: makes the headers of inbox entries written by hand unique
SEQ = itertools.count()
#: bytes within which of MAX_SIZE a message may go either way: an encrypted payload also
#: seals its target, whose length differs between a channel and a group
MARGIN = 256


def refusal(message: Any, codec: Codec | None, limit: int | None) -> bool | None:
    """Whether a layer must refuse ``message`` at the sender: no valid type, or (across
    processes) a value msgpack cannot carry (in memory: an integer beyond 64 bits), or over
    the size ``limit``. None: it is so close to the limit that either is right."""
    try:
        require_message(message)
        size = encoded_size(message) if codec is None else len(codec.encode(message))
    except InvalidMessage:
        return True
    if limit is None:
        return False
    if abs(size - limit) < MARGIN:
        return None
    return size > limit


async def deliver(route: Route, message: Any, via: str, codec: Codec | None) -> bool:
    """Send ``message``; it must come out of the reader equal, or be refused at the sender
    (and only then) with InvalidMessage or MessageTooLarge (channelworks.exceptions).

    Whether it was delivered.
    """
    send = route.sender.send if via == "send" else route.sender.group_send
    target = route.channel if via == "send" else GROUP
    refused = refusal(message, codec, route.sender.max_message_size)
    if refused:
        event("refused at the sender")
        with pytest.raises((InvalidMessage, MessageTooLarge)):
            await send(target, message)
        return False
    if refused is None:
        try:
            await send(target, message)
        except MessageTooLarge:
            return False
    else:
        event("delivered")
        await send(target, message)
    try:
        got = await asyncio.wait_for(route.reader.receive(route.channel), PATIENCE)
    except TimeoutError:
        pytest.fail(f"{message!r} was accepted by {via} and never arrived")
    assert same_value(got, message), (got, message)
    return True


def lost(layer: BaseChannelLayer) -> int:
    return layer.stats.undecodable + layer.stats.lost + layer.stats.group_full


@fuzz_settings(max_examples=400)
@given(message=layer_messages(any_values()), via=st.sampled_from(["send", "group_send"]))
async def test_memory_layer_delivers_equal_or_refuses_at_the_sender(message: Any, via: str) -> None:
    """Through the in-memory layer a message with a valid type arrives equal, unless it holds
    an integer beyond 64 bits; any other is refused with InvalidMessage when sent."""
    layer = InMemoryChannelLayer()
    channel = await layer.new_channel()
    await layer.group_add(GROUP, channel)
    await deliver(Route(layer, layer, channel), message, via, None)
    assert lost(layer) == 0


@fuzz_settings(max_examples=200)
@given(name=channel_names(), group=group_names())
async def test_memory_layer_names_are_refused_or_work(name: str, group: str) -> None:
    """A channel or group name is either refused with InvalidChannelName or works."""
    layer = InMemoryChannelLayer()
    try:
        await layer.send(name, {"type": "hello"})
    except InvalidChannelName:
        pass
    else:
        assert await asyncio.wait_for(layer.receive(name), PATIENCE) == {"type": "hello"}
    try:
        await layer.group_add(group, "member")
    except InvalidChannelName:
        return
    await layer.group_send(group, {"type": "hello.group"})
    assert await asyncio.wait_for(layer.receive("member"), PATIENCE) == {"type": "hello.group"}


@dataclass
class Routes:
    """Two layers that are two processes to their broker, and channels to send to."""

    sender: Any
    reader: Any
    local: str  # a process-local channel of the reader, member of GROUP
    own: str  # a process-local channel of the sender, member of GROUP
    normal: str  # a normal channel


@pytest.fixture(params=["plain", "encrypted"])
async def redis_routes(request: pytest.FixtureRequest) -> AsyncIterator[Routes]:
    """Two Redis layers (two processes, as Redis sees them) under a fresh prefix, sharing
    an encryption key or not."""
    require_service("Redis", redis_reachable())
    from channelworks.layers.redis import RedisChannelLayer

    options: dict[str, Any] = {
        "hosts": [REDIS_URL],
        "prefix": f"fuzz-{secrets.token_hex(6)}",
        "max_message_size": MAX_SIZE,
    }
    if request.param == "encrypted":
        options["symmetric_encryption_keys"] = [KEY]
    sender = RedisChannelLayer(**options)
    reader = RedisChannelLayer(**options)
    try:
        local = await reader.new_channel()
        await reader.group_add(GROUP, local)
        own = await sender.new_channel()
        await sender.group_add(GROUP, own)
        yield Routes(sender, reader, local, own, "fuzz.normal")
    finally:
        await reader.flush()
        await sender.close()
        await reader.close()


VIAS = ["send to its channel", "send to a normal channel", "send to the sender's", "group_send"]


async def across_processes(routes: Routes, message: Any, via: str) -> None:
    """``deliver`` between two layers of one broker, along ``via``; then a plain message
    still gets through the reader, and neither layer counts anything as lost."""
    route = Route(routes.sender, routes.reader, routes.local)
    if via == "send to a normal channel":
        route = Route(routes.sender, routes.reader, routes.normal)
    elif via == "send to the sender's":
        route = Route(routes.sender, routes.sender, routes.own)
    codec = routes.sender.codec  # sizes are counted on the wire, encrypted if so configured
    delivered = await deliver(
        route, message, "group_send" if via == "group_send" else "send", codec
    )
    if delivered and via == "group_send":  # the sender's own member got it too, in memory
        got = await asyncio.wait_for(routes.sender.receive(routes.own), PATIENCE)
        assert same_value(got, message), (got, message)
    await deliver(Route(routes.sender, routes.reader, routes.local), {"type": "ok"}, "send", None)
    assert lost(routes.reader) == 0
    assert lost(routes.sender) == 0


@pytest.mark.services
@fuzz_settings(max_examples=250, shared_fixture=True)
@given(message=layer_messages(any_values()), via=st.sampled_from(VIAS))
async def test_redis_layer_delivers_equal_or_refuses_at_the_sender(
    redis_routes: Routes, message: Any, via: str
) -> None:
    """Across processes through Redis, a message arrives equal (as msgpack carries it) or is
    refused when sent (bad type, a value msgpack cannot carry, over max_message_size), to
    the reader's channels and to the sender's own (delivered in memory); the reader counts
    nothing as lost and keeps reading."""
    await across_processes(redis_routes, message, via)


@pytest.fixture
async def rabbitmq_routes() -> AsyncIterator[Routes]:
    """Two RabbitMQ layers (two processes, as the broker sees them) under a fresh prefix,
    deleted from the broker afterwards."""
    sender = rabbitmq()
    reader = rabbitmq(prefix=sender.prefix)  # type: ignore[attr-defined]
    try:
        local = await reader.new_channel()
        await reader.group_add(GROUP, local)
        own = await sender.new_channel()
        await sender.group_add(GROUP, own)
        yield Routes(sender, reader, local, own, "fuzz.normal")
    finally:
        await reader.flush()
        await reader.close()
        await sender.close()  # the first layer of the prefix deletes its names


@pytest.mark.services
@fuzz_settings(max_examples=150, shared_fixture=True)
@given(message=layer_messages(any_values()), via=st.sampled_from(VIAS))
async def test_rabbitmq_layer_delivers_equal_or_refuses_at_the_sender(
    rabbitmq_routes: Routes, message: Any, via: str
) -> None:
    """Across processes through RabbitMQ, a message arrives equal (as msgpack carries it) or
    is refused when sent (bad type, a value msgpack cannot carry); the reader counts nothing
    as lost and keeps reading."""
    await across_processes(rabbitmq_routes, message, via)


@pytest.mark.services
@fuzz_settings(max_examples=100, shared_fixture=True)
@given(name=channel_names())
async def test_redis_layer_channel_names_are_refused_or_work(
    redis_routes: Routes, name: str
) -> None:
    """A normal channel name is refused with InvalidChannelName, or a message sent to it
    arrives there."""
    if "!" in name:
        return  # another process's channel: nobody here may receive it
    layer = redis_routes.reader
    try:
        await redis_routes.sender.send(name, {"type": "hello"})
    except InvalidChannelName:
        return
    assert await asyncio.wait_for(layer.receive(name), PATIENCE) == {"type": "hello"}


@pytest.mark.services
@fuzz_settings(max_examples=100, shared_fixture=True)
@given(
    data=st.data(),
    message=wire_messages(),
    where=st.sampled_from(["a normal channel", "the reader's inbox"]),
)
async def test_redis_reader_counts_what_it_cannot_decode(
    redis_routes: Routes, data: st.DataObject, message: dict[Any, Any], where: str
) -> None:
    """Bytes written to Redis by someone else (corrupt, truncated, foreign, sealed with
    another key or for another target) are delivered if they are a message, else counted in
    stats.undecodable; either way the next good message arrives."""
    routes = redis_routes
    reader = routes.reader
    payload = data.draw(
        st.one_of(
            corrupted(routes.sender.codec.encode(message)),
            st.just(Codec(["a key the reader does not have, 32+ bytes"]).encode(message)),
            st.binary(max_size=100),
        )
    )
    expires = int(time.time() * 1000) + 60_000
    channel = routes.normal if where == "a normal channel" else routes.local
    before = reader.stats.undecodable  # the reader may take the entry at once
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    try:
        if channel == routes.normal:
            await client.rpush(reader.keys.channel(channel), b"%d\n" % expires + payload)
        else:
            head = f"s {expires} fuzz:{next(SEQ)} {channel}\n".encode()
            await client.rpush(reader.keys.inbox(reader.pid), head + payload)
    finally:
        await client.aclose()
    await routes.sender.send(channel, {"type": "good"})
    extra = 0
    while (await asyncio.wait_for(reader.receive(channel), PATIENCE)) != {"type": "good"}:
        extra += 1
    assert extra + reader.stats.undecodable - before == 1
