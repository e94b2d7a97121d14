"""Connections to one shard (a server, a Sentinel-managed master, or a cluster) for one loop.

Rules of this file:
- a ``Shard`` belongs to the event loop that first used it (asyncio streams do); the layer
  keeps one set per loop it runs on and closes it with ``aclose()``;
- ``execute`` sends a batch of commands in one write and reads every reply: a round trip for
  the whole batch. An error reply comes back as a ``ResponseError`` *value* in its place; a
  broken connection raises (``redis.exceptions.ConnectionError``/``TimeoutError``) and the
  caller decides whether to retry. redis-py's own retries are off, so there is one retry
  policy, the layer's;
- connecting (TCP connect and redis-py's handshake) is bounded on its own, by
  ``socket_timeout`` and by the time the caller has left (``connect_within``): a listener
  that accepts and never answers (a hung Redis, another service on the port) raises
  ``ConnectTimeout``, a connection error, so it is retried like a refused connection
  (nothing was sent) instead of waiting forever;
- blocking commands (``BLMOVE``) get connections of their own (``acquire_blocking``), never
  the ones ``execute`` uses, so a blocked read cannot hold up a send;
- replies are bytes (``decode_responses`` is forced off: payloads are binary).
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio.connection import AbstractConnection, ConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from channelworks.layers.redis.hosts import HostSpec

Command = tuple[Any, ...]

#: seconds a round trip may take before the connection counts as lost (``socket_timeout``)
DEFAULT_TIMEOUT = 5.0
#: seconds a blocking pop waits in Redis before it returns empty and is issued again
BLOCK_SECONDS = 1.0
#: seconds a blocking connection's round trip may take (pop.py bounds each with it): a pop
#: answers within BLOCK_SECONDS unless the link died
BLOCKING_SOCKET_TIMEOUT = BLOCK_SECONDS + 10.0


class ConnectTimeout(RedisConnectionError):
    """The server accepted the connection (or not) but did not finish the handshake in time;
    no command was sent, so running the batch again is safe."""


@contextlib.asynccontextmanager
async def connecting(limit: float) -> AsyncIterator[None]:
    """Bound a connect (TCP and handshake) by ``limit`` seconds; past it, ``ConnectTimeout``."""
    try:
        async with asyncio.timeout(limit):
            yield
    except TimeoutError as exc:
        raise ConnectTimeout(
            f"no answer while connecting within {limit:g} s (the server accepts "
            "connections but does not reply)"
        ) from exc


def _options(spec: HostSpec) -> dict[str, Any]:
    options = dict(spec.options)
    options["decode_responses"] = False
    options["retry"] = Retry(NoBackoff(), 0)
    return options


class Shard(ABC):
    """The connections a layer holds to one shard on one event loop."""

    #: a single server (or Sentinel master): one Lua script may touch any key on it
    single_server: bool = True
    #: seconds a connect (TCP and handshake) may take, blocking connections' too
    connect_timeout: float = DEFAULT_TIMEOUT

    def __init__(self, spec: HostSpec) -> None:
        self.spec = spec

    @abstractmethod
    async def execute(
        self, commands: Sequence[Command], *, connect_within: float | None = None
    ) -> list[Any]:
        """Run ``commands`` in one round trip; error replies come back as exception values.

        A connection to make first takes at most ``connect_within`` seconds (and the shard's
        own bound), or ``ConnectTimeout`` is raised.
        """

    async def load_scripts(self, sources: Sequence[str]) -> None:
        """Load Lua ``sources`` into the script cache (every primary, for a cluster)."""
        for reply in await self.execute([("SCRIPT", "LOAD", source) for source in sources]):
            if isinstance(reply, Exception):
                raise reply

    async def delete_matching(self, pattern: str, keep: tuple[str, ...]) -> None:
        """Delete every key matching ``pattern`` except those that start with one of ``keep``."""
        keep_bytes = tuple(k.encode() for k in keep)
        cursor: Any = 0
        while True:
            (reply,) = await self.execute([("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)])
            if isinstance(reply, Exception):
                raise reply
            cursor, keys = reply
            doomed = [key for key in keys if not key.startswith(keep_bytes)]
            if doomed:
                (reply,) = await self.execute([("UNLINK", *doomed)])
                if isinstance(reply, Exception):
                    raise reply
            if int(cursor) == 0:
                return

    @abstractmethod
    async def acquire_blocking(self, key: str) -> AbstractConnection:
        """A connected connection for a blocking command on ``key``; give it back with
        ``release_blocking``."""

    @abstractmethod
    async def release_blocking(self, connection: AbstractConnection) -> None: ...

    def fits(self, connection: AbstractConnection, key: str) -> bool:
        """Whether ``connection`` (from ``acquire_blocking``) reaches the node of ``key``."""
        return True

    async def blocking_failed(self, error: Exception) -> None:
        """A blocking command was refused with ``error`` (``MOVED``): look the key up again."""
        return

    @abstractmethod
    async def aclose(self) -> None:
        """Close every connection; the shard is not used afterwards."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.spec.identity}>"


@dataclass(frozen=True, slots=True)
class Packed:
    """``count`` arguments of a command already in RESP (``$len\\r\\ndata\\r\\n`` each), as
    one item of the command: a caller that makes many arguments as it goes (batched sends)
    packs each once, and packing the command is then a join."""

    count: int
    data: bytes

    def args(self) -> list[bytes]:
        """The arguments, unpacked (for clients that pack commands themselves: Cluster)."""
        args: list[bytes] = []
        data, at = self.data, 0
        while at < len(data):
            line_end = data.index(b"\r\n", at)
            size = int(data[at + 1 : line_end])
            start = line_end + 2
            args.append(data[start : start + size])
            at = start + size + 2
        if len(args) != self.count:
            raise ValueError(f"Packed holds {len(args)} arguments, not {self.count}")
        return args


def unpacked(command: Command) -> Command:
    """``command`` with any ``Packed`` item spread into its arguments."""
    if not any(isinstance(arg, Packed) for arg in command):
        return command
    args: list[Any] = []
    for arg in command:
        if isinstance(arg, Packed):
            args += arg.args()
        else:
            args.append(arg)
    return tuple(args)


def pack_commands(commands: Sequence[Command]) -> bytes:
    """``commands`` in the Redis protocol (RESP), ready for one write.

    What redis-py's ``pack_commands`` makes of the arguments this layer uses (``bytes``,
    ``str``, ``int``, ``float``, and our ``Packed``), in a third of its time: on a busy
    sender, packing was most of the CPU a send costs.
    """
    out: list[bytes] = []
    for command in commands:
        at = len(out)
        out.append(b"")  # the header, once the arguments are counted
        extra = 0  # arguments in Packed items beyond the one item each is
        for arg in command:
            if arg.__class__ is Packed:
                out.append(arg.data)
                extra += arg.count - 1
                continue
            if isinstance(arg, bytes):
                data = arg
            elif isinstance(arg, str):
                data = arg.encode()
            elif isinstance(arg, int):
                data = b"%d" % arg
            elif isinstance(arg, float):
                data = repr(arg).encode()
            else:
                raise TypeError(f"cannot send a {type(arg).__name__} to Redis")
            out.append(b"$%d\r\n%s\r\n" % (len(data), data))
        out[at] = b"*%d\r\n" % (len(command) + extra)
    return b"".join(out)


async def run_on(connection: AbstractConnection, commands: Sequence[Command]) -> list[Any]:
    """Send ``commands`` on ``connection`` in one write and read their replies."""
    if not connection.is_connected:
        await cast(Any, connection).connect()  # Sentinel connections find the master here
    await connection.send_packed_command(pack_commands(commands), check_health=False)
    replies: list[Any] = []
    for _ in commands:
        try:
            replies.append(await connection.read_response())
        except ResponseError as exc:  # an error reply; the stream is still in step
            replies.append(exc)
    return replies


class ServerShard(Shard):
    """One Redis server, or the master of a Sentinel set (followed across failovers)."""

    def __init__(self, spec: HostSpec) -> None:
        super().__init__(spec)
        options = _options(spec)
        # Blocking connections get no socket timeout either: redis-py would start a timer per
        # reply read; a popper bounds its whole round trip with one (BLOCKING_SOCKET_TIMEOUT).
        blocking = options | {"socket_timeout": None, "socket_connect_timeout": None}
        # redis-py wraps every write in asyncio.wait_for (a task each) when a socket timeout
        # is set; ``execute`` bounds the whole round trip with one asyncio.timeout instead.
        self.timeout: float | None = options.get("socket_timeout", DEFAULT_TIMEOUT)
        self.connect_timeout = self.timeout if self.timeout is not None else DEFAULT_TIMEOUT
        socket_options = {k: v for k, v in options.items() if k.startswith("socket_")}
        options["socket_timeout"] = None
        self._sentinel: Any = None
        self._pool: Any
        self._blocking: Any
        if spec.sentinels:
            from redis.asyncio import sentinel

            make_sentinel: Any = sentinel.Sentinel
            make_pool: Any = sentinel.SentinelConnectionPool

            self._sentinel = make_sentinel(
                list(spec.sentinels),
                sentinel_kwargs=dict(spec.sentinel_options or {}) or None,
                **({"socket_timeout": self.timeout} | socket_options),
            )
            self._pool = make_pool(spec.master_name, self._sentinel, **options)
            self._blocking = make_pool(spec.master_name, self._sentinel, **blocking)
        elif spec.url is not None:
            self._pool = ConnectionPool.from_url(spec.url, **options)
            self._blocking = ConnectionPool.from_url(spec.url, **blocking)
        else:
            self._pool = ConnectionPool(**options)
            self._blocking = ConnectionPool(**blocking)
        # Connections taken from the pool once and kept: the pool's own checks on every
        # checkout cost more than a small pipeline does.
        self._idle: list[AbstractConnection] = []
        self._leased: list[AbstractConnection] = []

    async def execute(
        self, commands: Sequence[Command], *, connect_within: float | None = None
    ) -> list[Any]:
        connection = self._idle.pop() if self._idle else None
        if connection is None or not connection.is_connected:
            connection = await self._connect(connection, connect_within)
        try:
            async with asyncio.timeout(self.timeout):
                return await run_on(connection, commands)
        except BaseException:
            # redis-py has dropped the socket (a reply may be half read); the connection
            # object reconnects on its next use.
            await connection.disconnect()
            raise
        finally:
            self._idle.append(connection)

    async def _connect(
        self, connection: AbstractConnection | None, within: float | None
    ) -> AbstractConnection:
        """``connection`` (or a new one from the pool) connected, within the bounds above."""
        limit = self.connect_timeout
        if within is not None:
            limit = max(0.0, min(limit, within))
        try:
            async with connecting(limit):
                if connection is None:
                    # the pool connects it (and gives it back itself if that fails)
                    connection = await self._pool.get_connection()
                    self._leased.append(connection)
                else:
                    await cast(Any, connection).connect()
        except BaseException:
            if connection is not None:
                await connection.disconnect()
                self._idle.append(connection)
            raise
        return connection

    @property
    def _redis(self) -> Any:
        """A redis-py client over this shard's command connections (channels_redis' name):
        closing it with its pool drops them, and the next command reconnects."""
        from redis.asyncio import Redis

        return Redis(connection_pool=self._pool)

    async def acquire_blocking(self, key: str) -> AbstractConnection:
        connection: AbstractConnection = await self._blocking.get_connection()
        return connection

    async def release_blocking(self, connection: AbstractConnection) -> None:
        await self._blocking.release(connection)

    async def aclose(self) -> None:
        for connection in self._leased:
            await self._pool.release(connection)
        self._idle.clear()
        self._leased.clear()
        await self._pool.aclose()
        await self._blocking.aclose()
        if self._sentinel is not None:
            await self._sentinel.aclose()


def open_shard(spec: HostSpec) -> Shard:
    """The connections for ``spec`` (none is opened until first use)."""
    if spec.cluster_nodes:
        from channelworks.layers.redis.cluster import ClusterShard

        shard: Shard = ClusterShard(spec)
        return shard
    return ServerShard(spec)


__all__ = [
    "BLOCKING_SOCKET_TIMEOUT",
    "BLOCK_SECONDS",
    "Command",
    "ConnectTimeout",
    "Packed",
    "ServerShard",
    "Shard",
    "connecting",
    "open_shard",
    "pack_commands",
    "run_on",
    "unpacked",
]
