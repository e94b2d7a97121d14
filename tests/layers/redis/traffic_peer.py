"""A server-like OS process for the Redis fault tests: clients in groups, steady group sends.

``python -m tests.layers.redis.traffic_peer URL PREFIX NAME RATE RETRY_TIMEOUT`` makes a layer
with ``CLIENTS`` channels of its own (client ``i`` joins group ``room-{i}``), a task per
channel that reads it (a consumer), and prints one JSON line ``{"ready": NAME}``. Then, on
stdin:

- ``go SECONDS``: ``group_send`` to ``room-{n % CLIENTS}`` ``{"origin": NAME, "n": n}`` at RATE
  per second for SECONDS (a raised error is counted in ``raised``); once this layer's queued
  group sends are done it prints ``{"sent": n}``;
- ``report``: prints ``{"received": {origin: {client: [n, ...]}}, "stats": {...}, "raised":
  k}``, closes the layer and exits.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import time
from collections import defaultdict
from typing import Any

from channelworks.layers.redis import RedisChannelLayer

CLIENTS = 4


async def consume(layer: RedisChannelLayer, channel: str, got: dict[str, list[int]]) -> None:
    while True:
        message: dict[str, Any] = await layer.receive(channel)
        got.setdefault(message["origin"], []).append(message["n"])


async def send_for(
    layer: RedisChannelLayer, name: str, rate: float, seconds: float
) -> tuple[int, int]:
    """Group sends at ``rate`` for ``seconds``; -> (how many, how many raised)."""
    raised = 0
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < seconds:
        try:
            message = {"type": "room.message", "origin": name, "n": n}
            await layer.group_send(f"room-{n % CLIENTS}", message)
        except Exception:
            raised += 1
        n += 1
        await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
    return n, raised


async def main(url: str, prefix: str, name: str, rate: float, retry_timeout: float) -> None:
    layer = RedisChannelLayer(hosts=[url], prefix=prefix, retry_timeout=retry_timeout)
    received: dict[int, dict[str, list[int]]] = defaultdict(dict)
    consumers = []
    for index in range(CLIENTS):
        channel = await layer.new_channel("client")
        await layer.group_add(f"room-{index}", channel)
        consumers.append(asyncio.create_task(consume(layer, channel, received[index])))
    print(json.dumps({"ready": name}), flush=True)
    loop = asyncio.get_running_loop()
    raised = 0
    while True:
        line = (await loop.run_in_executor(None, sys.stdin.readline)).split()
        if not line or line[0] == "report":
            break
        sent, raised = await send_for(layer, name, rate, float(line[1]))
        for _ in range(600):  # queued group sends are done (sent, or counted and logged)
            if not layer._queue:
                break
            await asyncio.sleep(0.05)
        print(json.dumps({"sent": sent}), flush=True)
    by_origin: dict[str, dict[int, list[int]]] = defaultdict(dict)
    for index, got in received.items():
        for origin, numbers in got.items():
            by_origin[origin][index] = numbers
    stats = dataclasses.asdict(layer.stats)
    print(json.dumps({"received": by_origin, "stats": stats, "raised": raised}), flush=True)
    for task in consumers:
        task.cancel()
    await asyncio.gather(*consumers, return_exceptions=True)
    await layer.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5])))
