"""Another OS process writing a group log: ``python -m tests.layers.rabbitmq.history_peer``.

``PREFIX GROUP COUNT``: ``COUNT`` group sends to ``GROUP`` with ``history=True`` (``{"type":
"t", "by": "peer", "n": n}``), printing each returned position as ``OFFSET EPOCH``, then
``done``; with ``COUNT`` 0 it sends one every 20 ms until killed (a log of default ``size``,
100, then holds what it sent for 2 s).
"""

from __future__ import annotations

import asyncio
import itertools
import sys

from channelworks.layers.rabbitmq import RabbitMQChannelLayer
from tests.layers.backends import RABBITMQ_URL


async def main(prefix: str, group: str, count: int) -> None:
    layer = RabbitMQChannelLayer(host=RABBITMQ_URL, prefix=prefix)
    try:
        numbers = range(count) if count else itertools.count()
        for n in numbers:
            message = {"type": "t", "by": "peer", "n": n}
            position = await layer.group_send(group, message, history=True)
            assert position is not None
            print(position.offset, position.epoch, flush=True)
            if not count:
                await asyncio.sleep(0.02)
        print("done", flush=True)
    finally:
        await layer.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
