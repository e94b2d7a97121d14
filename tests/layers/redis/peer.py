"""A second OS process for the Redis layer tests.

``python -m tests.layers.redis.peer URL PREFIX GROUP PROCESS_TIMEOUT`` makes a layer, a
channel of its own that joins GROUP, prints that channel's name on one line, then serves
until it gets ``{"type": "stop"}`` on its channel:

- ``ping`` (``n``, ``reply_to``): answers ``{"type": "pong", "n": n, "pid": ...}``;
- ``burst`` (``count``, ``reply_to``): sends ``count`` numbered ``seq`` messages, in order;
- ``room.message`` (``reply_to``), which comes through GROUP: answers ``ack``;
- ``history.burst`` (``group``, ``count``, ``reply_to``): ``count`` group sends to ``group``
  with ``history=True`` (numbered ``n``, named by ``by``), then ``sent`` with their positions;
- meanwhile it reads the normal channel ``work`` and answers each ``job`` (``n``,
  ``reply_to``) with ``done`` naming itself, so tests can see two processes share a channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import Any

from channelworks.layers.redis import RedisChannelLayer


async def work(layer: RedisChannelLayer) -> None:
    while True:
        job = await layer.receive("work")
        await layer.send(job["reply_to"], {"type": "done", "n": job["n"], "pid": layer.pid})


async def serve(layer: RedisChannelLayer, channel: str) -> None:
    while True:
        message: dict[str, Any] = await layer.receive(channel)
        kind = message["type"]
        if kind == "stop":
            return
        if kind == "ping":
            reply = {"type": "pong", "n": message["n"], "pid": layer.pid}
            await layer.send(message["reply_to"], reply)
        elif kind == "burst":
            for n in range(message["count"]):
                await layer.send(message["reply_to"], {"type": "seq", "n": n})
        elif kind == "history.burst":
            positions = []
            for n in range(message["count"]):
                logged = {"type": "room.logged", "n": n, "by": "peer"}
                position = await layer.group_send(message["group"], logged, history=True)
                positions.append(list(position) if position is not None else None)
            await layer.send(message["reply_to"], {"type": "sent", "positions": positions})
        elif kind == "room.message":
            await layer.send(message["reply_to"], {"type": "ack", "text": message["text"]})


async def main(url: str, prefix: str, group: str, process_timeout: float) -> None:
    layer = RedisChannelLayer(hosts=[url], prefix=prefix, process_timeout=process_timeout)
    channel = await layer.new_channel("peer")
    await layer.group_add(group, channel)
    print(channel, flush=True)
    worker = asyncio.create_task(work(layer))
    try:
        await serve(layer, channel)
    finally:
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
        await layer.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])))
