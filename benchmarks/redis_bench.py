"""The Redis layer workers: one OS process per role, driven by the benchmark over stdin/stdout.

``python -m benchmarks.redis_bench ROLE --layer NAME --prefix P ...`` where NAME is one of

- ``channelworks``: ``channelworks.layers.redis.RedisChannelLayer``;
- ``channels``: channels_redis' ``RedisChannelLayer`` (the core layer);
- ``channels_pubsub``: channels_redis' ``RedisPubSubChannelLayer``.

Every layer is built with its defaults (capacity 100 and so on) on ``REDIS_URL`` with the
prefix ``P``. The roles:

- ``p2p-receive``: makes one channel with ``new_channel()``, prints ``{"channel": NAME}`` and
  receives on it until told to stop. A ``bench.end`` message closes a pass: the count of
  messages received since the last one and the time (``time.monotonic()``, one clock for every
  process on Linux) go back to the sender through ``ACK_KEY``, a plain Redis list.
- ``p2p-send``: prints ``{"ready": true}``, then runs one pass per JSON line on stdin
  (``{"tasks": N, "seconds": S}``): N tasks send to the channel for S seconds, each awaiting
  its sends one after the other; a send refused with ``ChannelFull`` is retried after 1 ms and
  counted. Then ``bench.end``, and it waits for the receiver's acknowledgement. It answers one
  JSON line per pass; on EOF it tells the receiver to stop and exits.
- ``group-receive``: makes ``--members`` channels with ``new_channel()``, adds them to the
  group, and drains each one with a task of its own, as consumers would. When every member
  has round R's message it pushes R onto ``ACK_KEY``. Prints ``{"ready": true}`` and runs
  until stdin ends.
- ``group-send``: does an untimed warm-up round, prints ``{"ready": true}``, then per JSON line
  on stdin (``{"rounds": N, "budget": S}``) runs up to N rounds (at least 3, then until S
  seconds have passed). A round is one ``group_send`` (its call time is the figure) and waits
  for every receiving process's acknowledgement (the round time), so each round starts with
  every queue drained. Answers ``{"calls": [...], "rounds": [...]}``.

The acknowledgements travel through Redis but not through the layer being measured, so every
contender pays the same for them, and only outside the timed ``group_send`` call.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis

from benchmarks.apps.redis_settings import REDIS_URL

LAYERS = ("channelworks", "channels", "channels_pubsub")
MESSAGE = {"type": "bench.message", "text": "x" * 63}
GROUP = "bench-group"
#: seconds to wait for an acknowledgement before the worker gives up
ACK_TIMEOUT = 60
MIN_ROUNDS = 3
FULL_RETRY = 0.001


def make_layer(name: str, prefix: str) -> Any:
    """A layer of kind ``name`` on ``REDIS_URL`` with ``prefix``, defaults otherwise."""
    if name == "channelworks":
        from channelworks.layers.redis import RedisChannelLayer

        return RedisChannelLayer(hosts=[REDIS_URL], prefix=prefix)
    if name == "channels":
        core: Any = importlib.import_module("channels_redis.core")
        return core.RedisChannelLayer(hosts=[REDIS_URL], prefix=prefix)
    pubsub: Any = importlib.import_module("channels_redis.pubsub")
    return pubsub.RedisPubSubChannelLayer(hosts=[REDIS_URL], prefix=prefix)


def full_errors(name: str) -> tuple[type[BaseException], ...]:
    """The ``ChannelFull`` exception classes a send of layer ``name`` may raise."""
    from channelworks.exceptions import ChannelFull

    if name == "channelworks":
        return (ChannelFull,)
    exceptions: Any = importlib.import_module("channels.exceptions")
    return (ChannelFull, exceptions.ChannelFull)


async def close_layer(layer: Any) -> None:
    """Close whatever connections ``layer`` holds (each library names it differently)."""
    for method in ("close", "close_pools"):
        if hasattr(layer, method):
            await getattr(layer, method)()
            return
    if hasattr(layer, "flush"):  # channels_redis' pub/sub layer closes its pools in flush()
        await layer.flush()


def describe(layer: Any) -> str:
    kind = type(layer)
    return f"{kind.__module__}.{kind.__qualname__}"


def emit(payload: dict[str, Any]) -> None:
    print(json.dumps(payload), flush=True)


async def read_line() -> str:
    """The next line of stdin ('' at EOF), without blocking the event loop."""
    return await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


async def send_patiently(
    send: Callable[[str, dict[str, Any]], Awaitable[None]],
    channel: str,
    message: dict[str, Any],
    full: tuple[type[BaseException], ...],
) -> int:
    """Send, retrying after ``ChannelFull``; returns how many times it was refused."""
    refused = 0
    while True:
        try:
            await send(channel, message)
        except full:
            refused += 1
            await asyncio.sleep(FULL_RETRY)
        else:
            return refused


# -- point to point ---------------------------------------------------------------------------


async def p2p_receive(args: argparse.Namespace, layer: Any, ack: Redis) -> None:
    channel = await layer.new_channel()
    emit({"channel": channel, "layer": describe(layer)})
    received = 0
    while True:
        message = await layer.receive(channel)
        kind = message["type"]
        if kind == "bench.message":
            received += 1
        elif kind == "bench.end":
            ended = time.monotonic()
            await ack.rpush(args.ack_key, json.dumps({"received": received, "ended": ended}))
            received = 0
        elif kind == "bench.stop":
            return


async def p2p_pass(
    args: argparse.Namespace, layer: Any, ack: Redis, tasks: int, seconds: float
) -> dict[str, Any]:
    full = full_errors(args.layer)
    sent = refused = 0

    async def sender(deadline: float) -> None:
        nonlocal sent, refused
        while time.monotonic() < deadline:
            refused += await send_patiently(layer.send, args.channel, MESSAGE, full)
            sent += 1

    cpu = time.process_time()
    started = time.monotonic()
    deadline = started + seconds
    await asyncio.gather(*(sender(deadline) for _ in range(tasks)))
    sending = time.monotonic() - started
    refused += await send_patiently(layer.send, args.channel, {"type": "bench.end"}, full)
    reply = await ack.blpop([args.ack_key], timeout=ACK_TIMEOUT)
    if reply is None:
        raise TimeoutError(f"the receiver did not acknowledge in {ACK_TIMEOUT} s")
    got = json.loads(reply[1])
    elapsed = got["ended"] - started
    return {
        "tasks": tasks,
        "sent": sent,
        "received": got["received"],
        "sending_s": sending,
        "elapsed_s": elapsed,
        "rate": got["received"] / elapsed,
        "refused": refused,
        "sender_cpu_s": time.process_time() - cpu,
    }


async def p2p_send(args: argparse.Namespace, layer: Any, ack: Redis) -> None:
    emit({"ready": True, "layer": describe(layer)})
    try:
        while line := await read_line():
            command = json.loads(line)
            emit(await p2p_pass(args, layer, ack, command["tasks"], command["seconds"]))
    finally:
        await send_patiently(
            layer.send, args.channel, {"type": "bench.stop"}, full_errors(args.layer)
        )


# -- group_send -------------------------------------------------------------------------------


async def group_receive(args: argparse.Namespace, layer: Any, ack: Redis) -> None:
    names = [await layer.new_channel() for _ in range(args.members)]
    for name in names:
        await layer.group_add(GROUP, name)
    counts: dict[int, int] = {}

    async def drain(name: str) -> None:
        while True:
            message = await layer.receive(name)
            number = message["n"]
            count = counts.get(number, 0) + 1
            if count < len(names):
                counts[number] = count
            else:
                counts.pop(number, None)
                await ack.rpush(args.ack_key, number)

    receivers = [asyncio.create_task(drain(name)) for name in names]
    try:
        emit({"ready": True, "layer": describe(layer), "members": len(names)})
        while await read_line():
            pass
        for task in receivers:
            if task.done():  # a receiver failed: say why
                task.result()
    finally:
        for task in receivers:
            task.cancel()
        await asyncio.gather(*receivers, return_exceptions=True)


async def group_round(
    args: argparse.Namespace, layer: Any, ack: Redis, number: int
) -> tuple[float, float]:
    """One ``group_send`` and every acknowledgement: (call seconds, round seconds)."""
    started = time.perf_counter()
    await layer.group_send(GROUP, {"type": "bench.message", "n": number})
    called = time.perf_counter()
    waiting = args.receivers
    while waiting:
        reply = await ack.blpop([args.ack_key], timeout=ACK_TIMEOUT)
        if reply is None:
            raise TimeoutError(f"round {number}: not every member got the message")
        if int(reply[1]) == number:
            waiting -= 1
    return called - started, time.perf_counter() - started


async def group_send(args: argparse.Namespace, layer: Any, ack: Redis) -> None:
    number = 0
    await group_round(args, layer, ack, number)  # warm-up, not recorded
    emit({"ready": True, "layer": describe(layer)})
    while line := await read_line():
        command = json.loads(line)
        calls: list[float] = []
        rounds: list[float] = []
        deadline = time.monotonic() + command["budget"]
        while len(calls) < command["rounds"] and (
            len(calls) < MIN_ROUNDS or time.monotonic() < deadline
        ):
            number += 1
            call, whole = await group_round(args, layer, ack, number)
            calls.append(call)
            rounds.append(whole)
        emit({"calls": calls, "rounds": rounds})


ROLES = {
    "p2p-receive": p2p_receive,
    "p2p-send": p2p_send,
    "group-receive": group_receive,
    "group-send": group_send,
}


async def run(args: argparse.Namespace) -> None:
    layer = make_layer(args.layer, args.prefix)
    ack = Redis.from_url(REDIS_URL)
    try:
        async with asyncio.timeout(args.time_limit):
            await ROLES[args.role](args, layer, ack)
    finally:
        await close_layer(layer)
        await ack.aclose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.redis_bench")
    parser.add_argument("role", choices=list(ROLES))
    parser.add_argument("--layer", choices=LAYERS, required=True)
    parser.add_argument("--prefix", required=True, help="key prefix of the layer")
    parser.add_argument("--ack-key", required=True, help="Redis list for acknowledgements")
    parser.add_argument("--channel", help="p2p-send: the receiver's channel")
    parser.add_argument("--members", type=int, default=1000, help="group-receive: members")
    parser.add_argument("--receivers", type=int, default=1, help="group-send: receiving processes")
    parser.add_argument("--time-limit", type=float, default=300.0)
    asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
