"""symmetric_encryption_keys across layers: round trip, rotation, wrong keys."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
import redis.asyncio

from channelworks.layers.redis import RedisChannelLayer
from tests.layers.redis.conftest import MakeRedisLayer

pytestmark = pytest.mark.services

OLD = "the old key, 32 bytes of entropy or more!"
NEW = "the new key, also 32 bytes of entropy or more"


async def receive(layer: RedisChannelLayer, channel: str, timeout: float = 3) -> dict[str, Any]:
    return await asyncio.wait_for(layer.receive(channel), timeout)


async def test_encrypted_round_trip_and_nothing_readable_in_redis(
    make_redis_layer: MakeRedisLayer, redis_url: str
) -> None:
    layer = make_redis_layer(symmetric_encryption_keys=[OLD])
    secret = {"type": "chat.message", "text": "attack at dawn", "raw": b"\x00\xff"}
    await layer.send("vault", secret)
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        (stored,) = await client.lrange(layer.keys.channel("vault"), 0, -1)
    finally:
        await client.aclose()
    assert b"attack" not in stored
    assert await receive(layer, "vault") == secret


async def test_rotation_new_key_encrypts_old_key_still_decrypts(
    make_redis_layer: MakeRedisLayer,
) -> None:
    old = make_redis_layer(symmetric_encryption_keys=[OLD])
    rotated = make_redis_layer(symmetric_encryption_keys=[NEW, OLD])
    new_only = make_redis_layer(symmetric_encryption_keys=[NEW])
    theirs = await rotated.new_channel()
    await old.send(theirs, {"type": "from.old"})  # encrypted with OLD: rotated reads it
    assert (await receive(rotated, theirs))["type"] == "from.old"
    await rotated.send("shared", {"type": "from.rotated"})  # encrypted with NEW
    assert (await receive(new_only, "shared"))["type"] == "from.rotated"


async def test_a_wrong_key_fails_clearly_and_is_counted(
    make_redis_layer: MakeRedisLayer, caplog: pytest.LogCaptureFixture
) -> None:
    writer = make_redis_layer(symmetric_encryption_keys=[NEW])
    reader = make_redis_layer(symmetric_encryption_keys=[OLD])
    plain = make_redis_layer()
    channel = await reader.new_channel()
    with caplog.at_level(logging.ERROR, logger="channelworks.layers.redis"):
        await writer.send(channel, {"type": "unreadable"})
        await plain.send(channel, {"type": "not.encrypted"})
        await writer.send("shared", {"type": "unreadable.too"})
        with pytest.raises(TimeoutError):
            await receive(reader, channel, timeout=0.5)
        with pytest.raises(TimeoutError):
            await receive(reader, "shared", timeout=0.5)
        assert reader.stats.undecodable == 3
        # one line per reason at once (the inbox's, the normal channel's); the inbox's second
        # is held back (aggregated) and written when the layer closes
        messages = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert len(messages) == 2
        await reader.close()
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(messages) == 3
    assert all("decrypt" in m for m in messages)
    assert "dropped 1 entry(ies)" in messages[2]


async def test_an_encrypted_message_cannot_be_re_addressed_prolonged_or_replayed_late(
    make_redis_layer: MakeRedisLayer, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Someone who can write to Redis but has no key copies captured entries elsewhere.
    layer = make_redis_layer(symmetric_encryption_keys=[OLD], expiry=1)
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        await layer.send("vault", {"type": "secret"})
        (stored,) = await client.lrange(layer.keys.channel("vault"), 0, -1)
        assert isinstance(stored, bytes)
        expires, _, token = stored.partition(b"\n")
        forged = [
            (layer.keys.channel("elsewhere"), stored),  # re-addressed
            (layer.keys.channel("vault"), b"%d\n" % (int(expires) + 600_000) + token),  # later
        ]
        for key, entry in forged:
            await client.rpush(key, entry)
        with caplog.at_level(logging.ERROR, logger="channelworks.layers.redis"):
            assert (await receive(layer, "vault"))["type"] == "secret"  # the genuine one
            for channel in ("elsewhere", "vault"):
                with pytest.raises(TimeoutError):
                    await receive(layer, channel, timeout=0.3)
        assert layer.stats.undecodable == 2
        assert "sealed for another target or expiry" in caplog.text
        # a token older than its ttl (expiry plus slack) is refused, whatever the entry says
        slow = make_redis_layer(symmetric_encryption_keys=[OLD])
        slow._token_ttl = 1  # expiry is 60 s; the token's own age limit, shortened
        await slow.send("late", {"type": "late"})
        await asyncio.sleep(2.1)
        with (
            caplog.at_level(logging.ERROR, logger="channelworks.layers.redis"),
            pytest.raises(TimeoutError),
        ):
            await receive(slow, "late", timeout=0.3)
        assert slow.stats.undecodable == 1
        assert "older than 1 s" in caplog.text
    finally:
        await client.aclose()
