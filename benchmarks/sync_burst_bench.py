"""A burst of ``group_send``s to a room of the tutorial's sync consumers, in process.

``python -m benchmarks.sync_burst_bench`` runs each framework in a process of its own and
prints deliveries per second and process CPU per delivery. No server: each framework's
``/room-sync`` application (``benchmarks/apps``: a sync ``WebsocketConsumer``, ``connect``
joins the room with ``async_to_sync``, a plain ``def chat_message`` sends) is called with a
websocket scope and in-memory ``receive``/``send``. 200 members connect; then, per round, the
event loop itself ``group_send``s 50 messages back to back (as a view, a signal or an async
consumer would), and the round ends when every member has sent all 50 to its client.

What it shows: channelworks hands the messages waiting in a sync consumer's channel to a
worker thread together (docs/consumers.md), so the cost per delivery is mostly the handler's.
The server benchmark's sync room (figure 2) differs: its sender is a sync consumer too, and
each frame's deliveries are done before the next frame is handled.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import subprocess
import sys
import time
from typing import Any

APPS = {
    "channelworks": "benchmarks.apps.channelworks_app",
    "channels": "benchmarks.apps.channels_app",
}


def _layer(framework: str) -> Any:
    if framework == "channelworks":
        from channelworks.layers import get_channel_layer

        return get_channel_layer()
    return importlib.import_module("channels.layers").get_channel_layer()


async def measure(framework: str, members: int, messages: int, rounds: int) -> dict[str, Any]:
    module = importlib.import_module(APPS[framework])
    application = module.application
    layer = _layer(framework)
    sent = 0
    target = 0
    accepted = 0
    done = asyncio.Event()

    async def send(message: dict[str, Any]) -> None:
        nonlocal sent, accepted
        if message["type"] == "websocket.send":
            sent += 1
            if sent >= target:
                done.set()
        elif message["type"] == "websocket.accept":  # after joining the room
            accepted += 1

    queues: list[asyncio.Queue[dict[str, Any]]] = []
    consumers: list[asyncio.Future[Any]] = []  # referenced: the loop keeps tasks weakly
    for index in range(members):
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        queue.put_nowait({"type": "websocket.connect"})
        queues.append(queue)
        scope = {
            "type": "websocket",
            "path": "/room-sync",
            "raw_path": b"/room-sync",
            "query_string": b"",
            "headers": [],
            "subprotocols": [],
            "client": ("127.0.0.1", 10000 + index),
            "server": ("127.0.0.1", 80),
            "scheme": "ws",
            "asgi": {"version": "3.0"},
            "root_path": "",
        }
        consumers.append(asyncio.ensure_future(application(scope, queue.get, send)))

    async def one_round(number: int) -> float:
        nonlocal sent, target
        sent, target = 0, members * messages
        done.clear()
        started = time.perf_counter()
        for index in range(messages):
            message = {"type": "chat.message", "text": f"{number}:{index}"}
            await layer.group_send(module.ROOM, message)
        await asyncio.wait_for(done.wait(), 60)
        return time.perf_counter() - started

    deadline = time.monotonic() + 60
    while accepted < members:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{framework}: {accepted} of {members} members connected")
        await asyncio.sleep(0.01)
    await one_round(0)  # warm-up
    cpu = time.process_time()
    elapsed = sum([await one_round(number) for number in range(1, rounds + 1)])
    cpu = time.process_time() - cpu
    deliveries = members * messages * rounds
    return {
        "framework": framework,
        "deliveries_per_s": deliveries / elapsed,
        "cpu_us_per_delivery": cpu / deliveries * 1e6,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sync_burst_bench")
    parser.add_argument("--frameworks", default="channelworks,channels")
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a child: this framework, JSON out
    args = parser.parse_args(argv)
    if args.one:
        result = asyncio.run(measure(args.one, args.members, args.messages, args.rounds))
        print(json.dumps(result))
        sys.stdout.flush()
        import os

        os._exit(0)  # the consumers' tasks and worker threads go with the process
    print(f"{'framework':<14}{'deliveries/s':>14}{'CPU µs/delivery':>18}")
    for framework in args.frameworks.split(","):
        output = subprocess.run(
            [
                *(sys.executable, "-m", "benchmarks.sync_burst_bench", "--one", framework),
                *(f"--members={args.members}", f"--messages={args.messages}"),
                f"--rounds={args.rounds}",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        result = json.loads(output.strip().splitlines()[-1])
        print(
            f"{framework:<14}{result['deliveries_per_s']:>14,.0f}"
            f"{result['cpu_us_per_delivery']:>18.2f}"
        )


if __name__ == "__main__":
    main()
