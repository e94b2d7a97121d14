"""``channelworks status`` in one process: its text, its JSON and its exit codes."""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Iterator

import pytest

from channelworks.layers import InMemoryChannelLayer, channel_layers
from channelworks.ops import status
from channelworks.testing import WebsocketCommunicator
from tests.ops.test_metrics import app


@pytest.fixture
def layer() -> Iterator[InMemoryChannelLayer]:
    layer = InMemoryChannelLayer()
    channel_layers.configure({"default": {"BACKEND": "channelworks.layers.InMemoryChannelLayer"}})
    channel_layers.set("default", layer)
    yield layer
    channel_layers.configure(None)


def args(**options: object) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    status.add_arguments(parser)
    namespace = parser.parse_args([])
    for key, value in options.items():
        setattr(namespace, key, value)
    return namespace


async def test_text_lists_the_process_its_connections_groups_and_counters(
    layer: InMemoryChannelLayer,
) -> None:
    ws = WebsocketCommunicator(app, "/echo/")
    await ws.connect()
    await ws.send_to(text_data="hi")
    await ws.receive_from()
    out = io.StringIO()
    assert await status._run(args(), out) == 0
    await ws.disconnect()
    text = out.getvalue()
    lines = text.splitlines()
    assert lines[0] == "1 process(es) answered on layer 'default' (InMemoryChannelLayer)"
    assert "connections 1" in lines[2]
    header = ("ID", "ROUTE", "USER", "CLIENT", "AGE", "IN", "OUT", "GROUPS/TOPICS")
    assert tuple(lines[3].split()) == header
    assert lines[4].split()[1:] == ["echo", "-", "127.0.0.1:51000", "0s", "1", "1", "room"]
    assert "groups (members across processes):\n  room  1" in text
    assert "layer 'default' counters (summed over processes):\n  group_full=0 " in text


async def test_json_and_limit(layer: InMemoryChannelLayer) -> None:
    sockets = [WebsocketCommunicator(app, "/echo/") for _ in range(3)]
    for ws in sockets:
        await ws.connect()
    out = io.StringIO()
    assert await status._run(args(json=True, limit=2), out) == 0
    [snapshot] = json.loads(out.getvalue())
    assert snapshot["connections_total"] == 3
    assert len(snapshot["connections"]) == 2
    text = io.StringIO()
    await status._run(args(limit=2), text)
    assert "  ... and 1 more (--limit)" in text.getvalue()
    for ws in sockets:
        await ws.disconnect()


async def test_exit_codes_without_a_layer_or_an_answer() -> None:
    channel_layers.configure({})
    try:
        out = io.StringIO()
        assert await status._run(args(), out) == 2
        assert "No channel layer 'default'" in out.getvalue()
    finally:
        channel_layers.configure(None)
    assert status.render([], layer="default", backend="RedisChannelLayer").startswith(
        "0 process(es) answered on layer 'default' (RedisChannelLayer)\nNone answered"
    )


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_a_layer_that_cannot_reach_its_broker_says_so() -> None:
    # It printed "0 process(es) answered ... processes join with their first WebSocket
    # connection" and exited 1, as if the site were idle, when Redis was down.
    dead = f"redis://127.0.0.1:{free_port()}"
    backend = "channelworks.layers.redis.RedisChannelLayer"
    config = {"hosts": [dead], "retry_timeout": 0.5}
    channel_layers.configure({"default": {"BACKEND": backend, "CONFIG": config}})
    try:
        out = io.StringIO()
        assert await status._run(args(timeout=0.2), out) == 3
    finally:
        channel_layers.configure(None)
    text = out.getvalue()
    assert "cannot reach its broker" in text
    assert "Redis" in text
    assert "processes join" not in text
