"""Another OS process for the RabbitMQ layer tests: ``python -m tests.layers.rabbitmq.peer``.

``PREFIX GROUP COUNT [PROCESS_CAPACITY]``: joins a new channel to ``GROUP``, prints the
channel's name, then receives ``COUNT`` group messages; for each it sends ``{"type": "echo",
"n": n, "pid": …}`` to the channel named in the message's ``reply`` and group-sends the same
to ``GROUP-back``. With ``COUNT`` 0 it waits until killed.
"""

from __future__ import annotations

import asyncio
import os
import sys

from channelworks.layers.rabbitmq import RabbitMQChannelLayer
from tests.layers.backends import RABBITMQ_URL


async def main(prefix: str, group: str, count: int, capacity: int = 10000) -> None:
    layer = RabbitMQChannelLayer(host=RABBITMQ_URL, prefix=prefix, process_capacity=capacity)
    try:
        channel = await layer.new_channel("peer")
        await layer.group_add(group, channel)
        print(channel, flush=True)
        if not count:  # stay until killed
            await asyncio.Event().wait()
        for _ in range(count):
            message = await asyncio.wait_for(layer.receive(channel), 30)
            echo = {"type": "echo", "n": message["n"], "pid": os.getpid()}
            await layer.send(message["reply"], echo)
            await layer.group_send(f"{group}-back", echo)
    finally:
        await layer.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])))
