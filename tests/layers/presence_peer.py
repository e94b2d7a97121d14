"""Another OS process holding presences, for the presence contract tests.

``python -m tests.layers.presence_peer BACKEND URL PREFIX GROUP COUNT TIMEOUT`` makes a layer
of BACKEND (``redis`` or ``rabbitmq``), tracks COUNT channels of its own in GROUP (keys
``peer-0``...), prints ``ready`` once ``presence(GROUP)`` lists them, then waits: killed, it
leaves its presences behind; a line ``close`` on stdin closes the layer (a clean stop).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from channelworks.layers.base import BaseChannelLayer


def make(backend: str, url: str, prefix: str, timeout: float) -> BaseChannelLayer:
    options: dict[str, Any] = {"prefix": prefix, "presence_timeout": timeout}
    if backend == "redis":
        from channelworks.layers.redis import RedisChannelLayer

        return RedisChannelLayer(hosts=[url], **options)
    from channelworks.layers.rabbitmq import RabbitMQChannelLayer

    return RabbitMQChannelLayer(host=url, **options)


async def main(backend: str, url: str, prefix: str, group: str, count: int, timeout: float) -> None:
    layer = make(backend, url, prefix, timeout)
    for n in range(count):
        channel = await layer.new_channel("peer")
        await layer.group_add(group, channel)
        await layer.presence_track(group, channel, f"peer-{n}", {"n": n})
    for _ in range(1000):  # its own, listed at once once the tracker has started
        if len(await layer.presence(group)) == count:
            break
        await asyncio.sleep(0.01)
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await layer.close()
    print("closed", flush=True)


if __name__ == "__main__":
    backend, url, prefix, group, count, timeout = sys.argv[1:7]
    asyncio.run(main(backend, url, prefix, group, int(count), float(timeout)))
