"""A Redis Cluster as one shard: redis-py's cluster client routes each command by its slot.

Rules of this file:
- every script's keys share a hash tag (keys.py), so each runs on one node; ``GROUP_SEND``,
  which builds keys it is not given, is never sent here (``single_server`` is False) and a
  ``group_send`` costs two round trips: members, then one push per process, grouped by node;
- a batch goes through a cluster pipeline (one round trip per node it touches, in
  parallel), which follows ``MOVED``/``ASK`` and reloads the slot map by itself;
- blocking pops run on plain connections to the node that holds the key's slot, taken from
  one pool per node; a popper whose next key lives on another node swaps its connection for
  one of that node's (``fits``), so alternating keys never meet ``MOVED``. If the slot
  itself moved, the pop's ``MOVED`` reply refreshes the slot map (``blocking_failed``) and
  the caller pops again, on the new node.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import AbstractConnection, ConnectionPool

from channelworks.layers.redis.hosts import HostSpec
from channelworks.layers.redis.shard import Command, Shard, unpacked


class ClusterShard(Shard):
    """All the nodes of one Redis Cluster."""

    single_server = False

    def __init__(self, spec: HostSpec) -> None:
        super().__init__(spec)
        self._options = dict(spec.options) | {"decode_responses": False}
        self._cluster: Any = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in spec.cluster_nodes],
            **self._options,
        )
        self._blocking: dict[tuple[str, int], Any] = {}
        self._owner: dict[AbstractConnection, Any] = {}

    async def execute(
        self, commands: Sequence[Command], *, connect_within: float | None = None
    ) -> list[Any]:
        pipeline = self._cluster.pipeline(transaction=False)
        for command in commands:
            pipeline.execute_command(*unpacked(command))
        replies: list[Any] = await pipeline.execute(raise_on_error=False)
        return replies

    async def load_scripts(self, sources: Sequence[str]) -> None:
        for source in sources:  # SCRIPT LOAD goes to every node
            await self._cluster.script_load(source)

    async def delete_matching(self, pattern: str, keep: tuple[str, ...]) -> None:
        keep_bytes = tuple(k.encode() for k in keep)
        doomed = [
            key
            async for key in self._cluster.scan_iter(match=pattern, count=1000)
            if not key.startswith(keep_bytes)
        ]
        for start in range(0, len(doomed), 500):  # keys of different slots: one UNLINK each
            batch = doomed[start : start + 500]
            for reply in await self.execute([("UNLINK", key) for key in batch]):
                if isinstance(reply, Exception):
                    raise reply

    async def acquire_blocking(self, key: str) -> AbstractConnection:
        await self._cluster.initialize()
        node = self._cluster.get_node_from_key(key)
        address = (node.host, node.port)
        pool = self._blocking.get(address)
        if pool is None:
            # no socket timeout: the popper bounds each round trip (BLOCKING_SOCKET_TIMEOUT)
            options = self._options | {"socket_timeout": None, "socket_connect_timeout": None}
            pool = self._blocking[address] = ConnectionPool(
                host=node.host, port=node.port, **options
            )
        connection: AbstractConnection = await pool.get_connection()
        self._owner[connection] = pool
        return connection

    def fits(self, connection: AbstractConnection, key: str) -> bool:
        node = self._cluster.get_node_from_key(key)
        return self._owner.get(connection) is self._blocking.get((node.host, node.port))

    async def release_blocking(self, connection: AbstractConnection) -> None:
        await self._owner.pop(connection).release(connection)

    async def blocking_failed(self, error: Exception) -> None:
        await self._cluster.nodes_manager.initialize()

    async def aclose(self) -> None:
        for pool in self._blocking.values():
            await pool.aclose()
        self._blocking.clear()
        await self._cluster.aclose()


__all__ = ["ClusterShard"]
