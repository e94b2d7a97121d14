"""The helpers of ``channels_redis.utils`` (under compat) that its users import.

channelworks' Redis layer does not use them: it shards by rendezvous hashing
(``hosts.pick_shard``) and owns its connections. They are here, with channels_redis'
behaviour, for code (and tests) that call them directly.
"""

from __future__ import annotations

import binascii
from collections.abc import Iterable
from typing import Any

#: positions on channels_redis' hash ring
RING_POSITIONS = 4096


def _consistent_hash(value: str | bytes, ring_size: int) -> int:
    """Index in ``range(ring_size)`` of ``value`` on channels_redis' CRC32 ring."""
    if ring_size == 1:
        return 0
    if isinstance(value, str):
        value = value.encode()
    position = binascii.crc32(value) & (RING_POSITIONS - 1)
    return int(position / (RING_POSITIONS / ring_size))


async def _close_redis(connection: Any) -> None:
    """Close a redis-py client and its connection pool."""
    await connection.aclose(close_connection_pool=True)


def decode_hosts(hosts: Iterable[Any] | None) -> list[dict[str, Any]]:
    """channels_redis' ``hosts`` setting as a list of connection keyword dicts.

    ``ValueError`` for a lone string: ``hosts`` is a list even with one server.
    """
    if not hosts:
        return [{"address": "redis://localhost:6379"}]
    if isinstance(hosts, (str, bytes)):
        raise ValueError("hosts must be a list of Redis hosts, even if there is only one")
    decoded: list[dict[str, Any]] = []
    for entry in hosts:
        if isinstance(entry, dict):
            decoded.append(entry)
        elif isinstance(entry, (tuple, list)):
            decoded.append({"host": entry[0], "port": entry[1]})
        else:
            decoded.append({"address": entry})
    return decoded


def create_pool(host: dict[str, Any]) -> Any:
    """A redis-py asyncio connection pool for one entry of ``decode_hosts``."""
    from redis import asyncio as aioredis

    options = dict(host)
    if "address" in options:
        return aioredis.ConnectionPool.from_url(options.pop("address"), **options)
    master_name = options.pop("master_name", None)
    if master_name is not None:
        make_sentinel: Any = aioredis.sentinel.Sentinel
        make_pool: Any = aioredis.sentinel.SentinelConnectionPool
        sentinel = make_sentinel(
            options.pop("sentinels"), sentinel_kwargs=options.pop("sentinel_kwargs", None)
        )
        return make_pool(master_name, sentinel, **options)
    return aioredis.ConnectionPool(**options)


__all__ = ["_close_redis", "_consistent_hash", "create_pool", "decode_hosts"]
