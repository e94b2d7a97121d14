"""The RabbitMQ layer workers: ``benchmarks.redis_bench``'s roles with RabbitMQ layers.

``python -m benchmarks.rabbitmq_bench ROLE --layer NAME --prefix P ...`` where NAME is
``channelworks`` (``channelworks.layers.rabbitmq.RabbitMQChannelLayer``) or ``channels``
(channels_rabbitmq's ``RabbitmqChannelLayer``), each with its defaults on ``RABBITMQ_URL``.
The roles, their commands and answers are those of benchmarks/redis_bench.py; the
acknowledgements travel through a plain RabbitMQ queue named by ``--ack-key`` (``Acks``),
outside the layer being measured, so both contenders pay the same for them.
channels_rabbitmq's queues are named by the library; its groups exchange is set to
``{P}.groups`` so that runs do not share one.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from typing import Any

import aiormq
from aiormq.abc import AbstractChannel, AbstractConnection, DeliveredMessage

from benchmarks import redis_bench

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"
LAYERS = ("channelworks", "channels")


def make_layer(name: str, prefix: str) -> Any:
    if name == "channelworks":
        from channelworks.layers.rabbitmq import RabbitMQChannelLayer

        return RabbitMQChannelLayer(host=RABBITMQ_URL, prefix=prefix)
    core: Any = importlib.import_module("channels_rabbitmq.core")
    return core.RabbitmqChannelLayer(host=RABBITMQ_URL, groups_exchange=f"{prefix}.groups")


class Acks:
    """``rpush`` and ``blpop`` (the two calls the roles make) over one RabbitMQ queue."""

    def __init__(self, connection: AbstractConnection, channel: AbstractChannel) -> None:
        self.connection = connection
        self.channel = channel
        self.received: asyncio.Queue[bytes] = asyncio.Queue()
        self.consuming: set[str] = set()
        self.declared: set[str] = set()

    @classmethod
    async def connect(cls) -> Acks:
        connection = await aiormq.connect(RABBITMQ_URL)
        return cls(connection, await connection.channel(publisher_confirms=False))

    async def _queue(self, key: str) -> None:
        if key not in self.declared:  # once: a declare is a round trip inside the timed round
            await self.channel.queue_declare(key, arguments={"x-expires": 600_000})
            self.declared.add(key)

    async def rpush(self, key: str, value: Any) -> None:
        await self._queue(key)
        await self.channel.basic_publish(str(value).encode(), routing_key=key)

    async def blpop(self, keys: list[str], timeout: float) -> tuple[bytes, bytes] | None:
        key = keys[0]
        if key not in self.consuming:
            await self._queue(key)

            async def got(delivery: DeliveredMessage) -> None:
                self.received.put_nowait(delivery.body)

            await self.channel.basic_consume(key, got, no_ack=True)
            self.consuming.add(key)
        try:
            return key.encode(), await asyncio.wait_for(self.received.get(), timeout)
        except TimeoutError:
            return None

    async def aclose(self) -> None:
        await self.connection.close()


async def connect(layer: Any) -> None:
    """Open ``layer``'s connection now, before a worker says it is ready.

    channels_rabbitmq connects (and declares its exclusive queue) only when ``send``,
    ``group_add`` or ``group_send`` first touches ``carehare_connection``: ``new_channel`` and
    ``receive`` do not. A p2p receiver that only receives would therefore have no queue, and
    RabbitMQ would drop every send to it without a word (they are not ``mandatory``): the
    sender then waited for a ``bench.end`` that never came, until every worker of the figure
    hit its time limit. channelworks' ``new_channel`` waits for its queue by itself.
    """
    connection = getattr(layer, "carehare_connection", None)
    if connection is not None:
        await connection


async def run(args: argparse.Namespace) -> None:
    layer = make_layer(args.layer, args.prefix)
    await connect(layer)
    acks = await Acks.connect()
    try:
        async with asyncio.timeout(args.time_limit):
            await redis_bench.ROLES[args.role](args, layer, acks)  # type: ignore[arg-type]
    finally:
        await redis_bench.close_layer(layer)
        await acks.aclose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rabbitmq_bench")
    parser.add_argument("role", choices=list(redis_bench.ROLES))
    parser.add_argument("--layer", choices=LAYERS, required=True)
    parser.add_argument("--prefix", required=True, help="queue and exchange name prefix")
    parser.add_argument("--ack-key", required=True, help="RabbitMQ queue for acknowledgements")
    parser.add_argument("--channel", help="p2p-send: the receiver's channel")
    parser.add_argument("--members", type=int, default=1000, help="group-receive: members")
    parser.add_argument("--receivers", type=int, default=1, help="group-send: receiving processes")
    parser.add_argument("--time-limit", type=float, default=300.0)
    asyncio.run(run(parser.parse_args(argv if argv is not None else sys.argv[1:])))


if __name__ == "__main__":
    main()
