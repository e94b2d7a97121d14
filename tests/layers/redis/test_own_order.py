"""Order per sender of sends to a layer's own channels when its own inbox entries land in
Redis out of sequence order (pushed over different connections)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from redis.asyncio import Redis

from channelworks.layers.redis import RedisChannelLayer
from channelworks.layers.redis.sends import pack_arg, pack_head
from tests.layers.redis.conftest import MakeRedisLayer

pytestmark = pytest.mark.services


async def _push_own(layer: RedisChannelLayer, channel: str, seq: int, n: str) -> None:
    """Push a send entry with ``seq`` to ``layer``'s own inbox, as ``send`` does when it cannot
    deliver in memory, and record its outcome as ``send`` does."""
    expires = 99999999999999
    entry = b"s %d %s:%d %s\n" % (
        expires,
        layer.pid.encode(),
        seq,
        channel.encode(),
    ) + layer._encode({"type": "m", "n": n}, channel, expires)
    reply = await layer._links.call(
        layer._own_shard,
        layer._send_local(layer.pid, [(pack_head(channel.encode(), 1000), [pack_arg(entry)])]),
        "send",
        channel,
    )
    assert layer._outcomes(layer.pid, [channel], [seq], reply) == [1]


async def test_own_inbox_entries_landing_out_of_sequence_keep_order_per_sender(
    make_redis_layer: MakeRedisLayer, redis_url: str
) -> None:
    layer = make_redis_layer(capacity=1000)
    channel = await layer.new_channel()
    home = layer._links.home
    assert home is not None
    assert home.reader is not None
    assert home.reader_task is not None
    reader = home.reader
    # Hold the reader back: from here on the test reads the inbox for it, entry by entry.
    home.reader_task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await home.reader_task
    # Sender X's entry gets seq 7, sender Y's seq 8; they go over different connections and
    # Y's lands first.
    seq_x, seq_y = next(layer._seq), next(layer._seq)
    await _push_own(layer, channel, seq_y, "y1")
    await _push_own(layer, channel, seq_x, "x1")
    client = Redis.from_url(redis_url)
    try:
        inbox = layer.keys.inbox(layer.pid)

        async def read_one() -> bool:
            entry = await client.lpop(inbox)
            if entry is None:
                return False
            assert isinstance(entry, bytes)
            await reader.deliver([entry])
            return True

        assert await read_one()  # the reader has read Y's entry, not yet X's
        await layer.send(channel, {"type": "m", "n": "x2"})  # X's next send
        while await read_one():
            pass
    finally:
        await client.aclose()
        home.reader_task = asyncio.get_running_loop().create_task(reader.run())
    got = []
    while (message := layer.local.receive_nowait(channel)) is not None:
        got.append(message["n"])
    assert got == ["y1", "x1", "x2"]
