"""SIGTERM to a real uvicorn: the layers close through lifespan, and other processes notice.

Without it a stopped server's Redis alive key and memberships, or its RabbitMQ process queue,
stayed until they expired, and other processes went on sending to it for up to a minute.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis.asyncio
from websockets.asyncio.client import connect

from channelworks.layers.redis import RedisChannelLayer
from tests.commands.processes import ROOT, START_TIMEOUT, TIMEOUT, django_command
from tests.layers.backends import (
    RABBITMQ_URL,
    REDIS_URL,
    delete_rabbitmq_names,
    rabbitmq_reachable,
    redis_reachable,
    require_service,
)
from tests.layers.redis.servers import free_port

pytestmark = pytest.mark.services


@contextmanager
def uvicorn_process(
    layer: str, url: str, prefix: str
) -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = free_port()
    env = os.environ | {
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
        "CHANNELWORKS_TEST_LAYER": layer,
        "CHANNELWORKS_TEST_URL": url,
        "CHANNELWORKS_TEST_PREFIX": prefix,
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "tests.commands.lifespan_app:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--lifespan",
            "on",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:  # bounded by the process: it ends or says it is ready
            if "Uvicorn running on" in line:
                break
        else:
            pytest.fail(f"uvicorn did not start ({process.wait(TIMEOUT)})")
        yield process, port
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=TIMEOUT)


async def join_room(port: int) -> tuple[Any, str]:
    socket = await connect(f"ws://127.0.0.1:{port}/ws/room/", open_timeout=TIMEOUT)
    channel = await asyncio.wait_for(socket.recv(), TIMEOUT)
    assert isinstance(channel, str)
    return socket, channel


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=START_TIMEOUT)
    # uvicorn ends as the signal would once it has shut down (re-raised), or with 0
    assert process.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output, output
    return output


async def test_sigterm_takes_a_redis_server_out_of_its_groups_at_once(prefix: str) -> None:
    require_service("Redis", redis_reachable())
    client: Any = redis.asyncio.Redis.from_url(REDIS_URL)
    other = RedisChannelLayer(hosts=[REDIS_URL], prefix=prefix)
    try:
        with uvicorn_process("redis", REDIS_URL, prefix) as (process, port):
            socket, channel = await join_room(port)
            pid = channel.rpartition("!")[0].rpartition(".")[2]
            group = other.keys.group("room")
            assert await client.exists(other.keys.alive(pid)) == 1
            assert await client.zscore(group, f"@{pid}") is not None
            output = await asyncio.to_thread(stop, process)
            await socket.close()
        assert "Traceback" not in output, output
        # Gone at once, not after process_timeout: nobody sends to it any more.
        assert await client.exists(other.keys.alive(pid)) == 0
        assert await client.zscore(group, f"@{pid}") is None
        await other.group_send("room", {"type": "anyone"})
        assert other.stats.dead_members == 0  # it was not there to be found dead
        await other.send(channel, {"type": "late"})  # dropped at once, counted
        assert other.stats.dead_process == 1
    finally:
        await other.flush()
        await other.close()
        await client.aclose()


async def test_sigterm_deletes_a_rabbitmq_servers_process_queue(prefix: str) -> None:
    require_service("RabbitMQ", rabbitmq_reachable())
    import aiormq
    from aiormq.exceptions import ChannelNotFoundEntity

    from channelworks.layers.rabbitmq.names import Names, process_of

    connection = await aiormq.connect(RABBITMQ_URL)
    queue = ""
    try:
        with uvicorn_process("rabbitmq", RABBITMQ_URL, prefix) as (process, port):
            socket, channel = await join_room(port)
            queue = Names(prefix).process(process_of(channel))
            control = await connection.channel()
            await control.queue_declare(queue, passive=True)  # it is there
            output = await asyncio.to_thread(stop, process)
            await socket.close()
        assert "Traceback" not in output, output
        control = await connection.channel()
        with pytest.raises(ChannelNotFoundEntity):
            await control.queue_declare(queue, passive=True)
    finally:
        await connection.close()
        await delete_rabbitmq_names(prefix, {queue} - {""})


@pytest.fixture
def prefix() -> str:
    import secrets

    return f"test-{secrets.token_hex(6)}"


async def test_sigterm_to_runworker_says_goodbye_in_redis_at_once(prefix: str) -> None:
    require_service("Redis", redis_reachable())
    client: Any = redis.asyncio.Redis.from_url(REDIS_URL)
    layers = {
        "default": {
            "BACKEND": "channelworks.layers.redis.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": prefix},
        }
    }
    env = {"CHANNELWORKS_TEST_CHANNEL_LAYERS": json.dumps(layers)}
    other = RedisChannelLayer(hosts=[REDIS_URL], prefix=prefix)
    try:
        with django_command("runworker", "thumbnail-generate", env=env) as worker:
            worker.wait_for(r"Running worker for channel\(s\) thumbnail-generate", START_TIMEOUT)
            await other.send("thumbnail-generate", {"type": "thumbnail.generate", "name": "x"})
            alive: list[bytes] = []
            for _ in range(100):  # the worker's consumer has a channel: its process is alive
                alive = [key async for key in client.scan_iter(f"{prefix}:alive:*")]
                if alive:
                    break
                await asyncio.sleep(0.05)
            assert len(alive) == 1
            worker.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(worker.wait) == 0
            assert "Worker stopped." in worker.drain()
        assert await client.exists(*alive) == 0  # at once, not process_timeout later
    finally:
        await other.flush()
        await other.close()
        await client.aclose()
