"""CPU per message of the Redis layer's two sides, each alone in one process, without I/O.

``python -m benchmarks.redis_cpu send`` and ``python -m benchmarks.redis_cpu receive`` print
one JSON line each. They measure our code only (no contender: these are for working on the
layer, the side-by-side figures are in ``redis_bench``), and on a shared machine they are
steadier than the two-process figure, because no other process competes for the CPU.

- ``send``: ``--tasks`` tasks each await ``send`` to another process's channel in a loop
  (as ``redis_bench``'s 50 sender tasks do); the layer's shard answers every round trip at
  once (one loop iteration, the commands packed as for the wire, every entry accepted), so
  what is left is the layer's own work per send: validation, encoding, batching, waking
  the caller. Needs Redis only to start (``REDIS_URL``); nothing is sent to it.
- ``receive``: the inbox reader's ``deliver`` is fed batches of ``--batch`` entries for one
  channel, as Redis would hand them out, and a task receives them, as a consumer does:
  parsing, decoding, the local layer, the consumer's ``receive``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any

from benchmarks.apps.redis_settings import REDIS_URL

MESSAGE = {"type": "bench.message", "text": "x" * 63}
#: a channel of another process (the layer sends to it through its inbox)
TARGET = "specific.0123456789abcdef!bench"


async def cpu_per_send(tasks: int, seconds: float) -> dict[str, Any]:
    from channelworks.layers.redis import RedisChannelLayer, scripts
    from channelworks.layers.redis.shard import Command, Packed, ServerShard, pack_commands

    async def answer_at_once(
        self: ServerShard, commands: Sequence[Command], **options: Any
    ) -> list[Any]:
        await asyncio.sleep(0)  # a round trip is at least a loop iteration
        pack_commands(commands)  # as a write would
        replies: list[Any] = []
        for command in commands:
            if command[:2] == ("EVALSHA", scripts.SEND_LOCAL.sha):
                last = command[-1]
                entries = last.count - 3 * command[-2] if isinstance(last, Packed) else 1
                replies.append(b"1" * entries)
            else:
                replies.append(b"OK")
        return replies

    ServerShard.execute = answer_at_once  # type: ignore[method-assign]
    layer = RedisChannelLayer(hosts=[REDIS_URL], prefix="bench-cpu")
    await layer.send(TARGET, MESSAGE)  # the home loop, its connections' objects
    sent = 0

    async def sender(deadline: float) -> None:
        nonlocal sent
        while time.monotonic() < deadline:
            await layer.send(TARGET, MESSAGE)
            sent += 1

    cpu = time.process_time()
    deadline = time.monotonic() + seconds
    await asyncio.gather(*(sender(deadline) for _ in range(tasks)))
    cpu = time.process_time() - cpu
    return {
        "side": "send",
        "tasks": tasks,
        "sends": sent,
        "us_per_send": cpu / sent * 1e6,
        "per_batch": sent / max(1, layer.stats.send_batches),
    }


async def cpu_per_receive(batch: int, seconds: float) -> dict[str, Any]:
    import msgpack  # type: ignore[import-untyped]

    from channelworks.layers.redis import RedisChannelLayer

    layer = RedisChannelLayer(hosts=[REDIS_URL], prefix="bench-cpu")
    try:
        channel = await layer.new_channel()  # starts the reader (on Redis, idle)
        home = layer._links.home
        assert home is not None
        assert home.reader is not None
        reader = home.reader
        payload = msgpack.packb(MESSAGE, use_bin_type=True)
        name = channel.encode()
        received = 0
        seq = 0
        drained = asyncio.Event()  # the consumer has every entry delivered so far

        async def consumer() -> None:
            nonlocal received
            while True:
                await layer.receive(channel)
                received += 1
                if received == seq:
                    drained.set()

        task = asyncio.create_task(consumer())
        await asyncio.sleep(0)
        cpu = time.process_time()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            expires = int(time.time() * 1000) + 60_000
            entries = []
            for _ in range(batch):
                seq += 1
                entries.append(b"s %d other:%d %s\n%s" % (expires, seq, name, payload))
            drained.clear()
            await reader.deliver(entries)
            reader.decrements.clear()  # no Redis to give them back to
            await drained.wait()
        cpu = time.process_time() - cpu
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return {
            "side": "receive",
            "batch": batch,
            "received": received,
            "us_per_message": cpu / received * 1e6,
        }
    finally:
        await layer.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.redis_cpu")
    parser.add_argument("side", choices=["send", "receive"])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--tasks", type=int, default=50, help="send: sender tasks")
    parser.add_argument("--batch", type=int, default=50, help="receive: entries per batch")
    args = parser.parse_args(argv)
    if args.side == "send":
        result = asyncio.run(cpu_per_send(args.tasks, args.seconds))
    else:
        result = asyncio.run(cpu_per_receive(args.batch, args.seconds))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
