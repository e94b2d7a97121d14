"""A server that accepts connections and never answers (a hung Redis, another service on the
port, a paused VM): every call ends within about ``retry_timeout`` as in an outage, and the
layer works once a real Redis answers on that address."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from channelworks.layers.redis import LayerClosed, RedisChannelLayer, RedisUnavailable
from tests.layers.redis.servers import RedisServer, require_redis_server

pytestmark = pytest.mark.services

#: a guard against a hang, far above retry_timeout: not a timing assertion
GUARD = 15.0


@contextlib.contextmanager
def silent_listener() -> Iterator[int]:
    """A port on 127.0.0.1 whose listener accepts (in its backlog) and never replies."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    try:
        yield int(listener.getsockname()[1])
    finally:
        listener.close()  # the connections waiting in its backlog are reset


async def test_calls_end_against_a_server_that_never_answers_then_recover(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    require_redis_server()
    layer: RedisChannelLayer | None = None
    server: RedisServer | None = None
    try:
        with silent_listener() as port, caplog.at_level(logging.WARNING, "channelworks"):
            layer = RedisChannelLayer(hosts=[("127.0.0.1", port)], retry_timeout=0.5)
            with pytest.raises(RedisUnavailable, match="no answer while connecting"):
                await asyncio.wait_for(layer.send("jobs", {"type": "job"}), GUARD)
            assert layer.stats.redis_errors == 1
            # As in an outage, new_channel makes the channel and says why it goes on
            channel = await asyncio.wait_for(layer.new_channel(), GUARD)
            assert "cannot reach Redis yet" in caplog.text
            with pytest.raises(RedisUnavailable):
                await asyncio.wait_for(layer.group_add("room", channel), GUARD)
            with pytest.raises(RedisUnavailable):
                await asyncio.wait_for(layer.history("room"), GUARD)
            with pytest.raises(RedisUnavailable):
                await asyncio.wait_for(layer.flush(), GUARD)
            assert layer.stats.redis_errors == 4
            assert "counted in stats.redis_errors" in caplog.text

        # A real Redis on that address now: the same layer works again.
        server = RedisServer(port, tmp_path)
        await asyncio.to_thread(server.start)
        for _ in range(100):
            try:
                await asyncio.wait_for(layer.group_add("room", channel), GUARD)
                break
            except RedisUnavailable:
                await asyncio.sleep(0.1)
        for _ in range(100):
            dropped = layer.stats.dead_process
            await asyncio.wait_for(layer.send(channel, {"type": "direct"}), GUARD)
            if layer.stats.dead_process == dropped:
                break
            await asyncio.sleep(0.1)  # the reader has not said "alive" yet: dropped, counted
        await asyncio.wait_for(layer.group_send("room", {"type": "room.message"}), GUARD)
        got = {(await asyncio.wait_for(layer.receive(channel), GUARD))["type"] for _ in range(2)}
        assert got == {"room.message", "direct"}
        await asyncio.wait_for(layer.send("jobs", {"type": "job"}), GUARD)
        assert (await asyncio.wait_for(layer.receive("jobs"), GUARD))["type"] == "job"
    finally:
        if layer is not None:
            await asyncio.wait_for(layer.close(), GUARD)
        if server is not None:
            await asyncio.to_thread(server.stop)


async def test_close_ends_a_receive_still_connecting_and_counts_no_loss(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with silent_listener() as port, caplog.at_level(logging.WARNING, "channelworks"):
        layer = RedisChannelLayer(
            hosts=[{"address": f"redis://127.0.0.1:{port}/0", "socket_timeout": 0.5}],
            retry_timeout=0.5,
        )
        receive = asyncio.create_task(layer.receive("jobs"))
        try:
            for _ in range(200):  # its connect got no answer: it said so and tries again
                if "receive('jobs') waits for Redis" in caplog.text:
                    break
                await asyncio.sleep(0.05)
            assert "no answer while connecting" in caplog.text
        finally:
            await asyncio.wait_for(layer.close(), GUARD)
        with pytest.raises(LayerClosed):
            await asyncio.wait_for(receive, GUARD)
        # nothing was read, so nothing was held: no loss counted, no "may have lost" line
        assert layer.stats.lost == 0
        assert "may have lost" not in caplog.text
