"""In-process layer microbenchmarks (no server): ``group_send`` fan-out and send+receive.

``python -m benchmarks.layer_bench {channelworks,channels} --sizes 10,100,1000`` prints one
JSON line. Each framework runs in its own process, so neither warms the other's allocator.

``group_send`` to N members: the members are channels from ``new_channel()``, each with a
receiver task that drains it (as a consumer does), so queues never fill up and each round
starts from the same state. Two times per round: the ``group_send`` call alone (the target is
on its median) and the time until every member's receiver has the message (the fair
comparison, because a layer may hand work over to the receivers or do it inside the call).

send+receive: one channel; 50 sends then 50 receives, repeated, in one task; messages/s.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import statistics
import time
from typing import Any, Protocol

GROUP = "bench-group"
MIN_REPEATS = 3
ROUND_TIMEOUT = 30.0
BATCH = 50


class Layer(Protocol):
    async def new_channel(self) -> str: ...
    async def group_add(self, group: str, channel: str) -> None: ...
    async def group_send(self, group: str, message: dict[str, Any]) -> object: ...
    async def send(self, channel: str, message: dict[str, Any]) -> None: ...
    async def receive(self, channel: str) -> dict[str, Any]: ...


def make_layer(framework: str) -> Layer:
    if framework == "channelworks":
        from channelworks.layers import InMemoryChannelLayer

        return InMemoryChannelLayer()
    layers: Any = importlib.import_module("channels.layers")
    layer: Layer = layers.InMemoryChannelLayer()
    return layer


async def time_group_send(
    layer: Layer, members: int, repeats: int, budget: float
) -> dict[str, Any]:
    names = [await layer.new_channel() for _ in range(members)]
    for name in names:
        await layer.group_add(GROUP, name)
    received = 0
    target = 0
    everyone = asyncio.Event()

    async def drain(name: str) -> None:
        nonlocal received
        while True:
            await layer.receive(name)
            received += 1
            if received >= target:
                everyone.set()

    receivers = [asyncio.create_task(drain(name)) for name in names]
    calls: list[float] = []
    rounds: list[float] = []
    try:
        deadline = time.monotonic() + budget
        for index in range(repeats + 1):  # round 0 is a warm-up, not recorded
            if index > MIN_REPEATS and time.monotonic() > deadline:
                break
            await asyncio.sleep(0)  # every receiver is waiting again
            everyone.clear()
            target = received + members
            started = time.perf_counter()
            await layer.group_send(GROUP, {"type": "bench.message", "n": index})
            called = time.perf_counter()
            await asyncio.wait_for(everyone.wait(), ROUND_TIMEOUT)
            done = time.perf_counter()
            if index:
                calls.append(called - started)
                rounds.append(done - started)
    finally:
        for task in receivers:
            task.cancel()
        await asyncio.gather(*receivers, return_exceptions=True)
    return {
        "call_median_s": statistics.median(calls),
        "round_median_s": statistics.median(rounds),
        "repeats": len(calls),
    }


async def time_send_receive(layer: Layer, messages: int, passes: int) -> dict[str, Any]:
    name = await layer.new_channel()
    message = {"type": "bench.message", "text": "hello"}
    rates: list[float] = []
    for _ in range(passes):
        started = time.perf_counter()
        for _ in range(max(1, messages // BATCH)):
            for _ in range(BATCH):
                await layer.send(name, message)
            for _ in range(BATCH):
                await layer.receive(name)
        rates.append(max(1, messages // BATCH) * BATCH / (time.perf_counter() - started))
    return {"rate": statistics.median(rates), "rates": rates}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"group_send": {}}
    for size in args.sizes:
        layer = make_layer(args.framework)  # a fresh layer per size
        results["group_send"][str(size)] = await time_group_send(
            layer, size, args.repeats, args.budget
        )
    results["send_receive"] = await time_send_receive(
        make_layer(args.framework), args.messages, args.passes
    )
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.layer_bench")
    parser.add_argument("framework", choices=["channelworks", "channels"])
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[10])
    parser.add_argument("--repeats", type=int, default=50, help="most group_send rounds per size")
    parser.add_argument("--budget", type=float, default=5.0, help="seconds per size, roughly")
    parser.add_argument("--messages", type=int, default=20000, help="send+receive per pass")
    parser.add_argument("--passes", type=int, default=3)
    print(json.dumps(asyncio.run(run(parser.parse_args(argv)))), flush=True)


if __name__ == "__main__":
    main()
