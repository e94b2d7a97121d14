"""Blocking reads that neither a cancelled caller nor a dropped connection can lose.

A blocking read (``BLMOVE``) runs on a connection that does nothing else, in a task of its
own that is never cancelled. The read never *removes* an entry: the inbox reader reads the
head of its inbox and trims it once it holds the entries (reader.py), a normal-channel
receive moves its entry into a hold list of its own and deletes it from there once it holds
it (layer.py, keys.py). So a reply lost on the wire leaves the entry in Redis, where the next
read after reconnecting finds it. Each round trip is bounded by ``BLOCKING_SOCKET_TIMEOUT``
(the connections have no socket timeout of their own: redis-py would time every reply), and
its connect, handshake included, by the shard's ``connect_timeout`` (``socket_timeout``), so a
server that accepts and never answers is noticed as a lost connection.

Cancelling ``run``:

1. tells Redis to end a blocked read now (``CLIENT UNBLOCK``, from another connection; the
   read's connection reported its id with ``CLIENT ID`` when it was opened);
2. waits for the read's replies, which are then empty, or hold entries if Redis served it
   first;
3. gives the replies to ``abandoned`` (which puts entries back), and only then lets the
   cancellation through. Steps 1-3 run in a task of their own (kept in ``tasks`` so that
   ``close()`` can wait for it), so a second cancellation cannot interrupt them.

The inbox reader reads with ``read`` instead: what it reads stays at the head of its inbox
until a later round trip acknowledges it (reader.py), so a read cut short loses nothing and
needs no task of its own (two loop iterations less per round trip); a cancel drops the
connection with the read on it, and the next read takes a fresh one.

A ``Popper`` keeps its connection (and its client id) from one read to the next, and gives it
back with ``release()``; after a failure it takes a fresh one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

from redis.asyncio.connection import AbstractConnection
from redis.exceptions import AskError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError

from channelworks.layers.redis.pipeline import Pipeline
from channelworks.layers.redis.shard import (
    BLOCK_SECONDS,
    BLOCKING_SOCKET_TIMEOUT,
    Command,
    Shard,
    connecting,
    pack_commands,
)

Abandoned = Callable[[list[Any]], Awaitable[None]]
Then = Callable[[list[Any]], Sequence[Command]]


class Popper:
    """Cancel-safe blocking reads on one shard (``control`` runs the ``CLIENT UNBLOCK``)."""

    def __init__(self, control: Pipeline, tasks: set[asyncio.Task[Any]], tag: str = "") -> None:
        self.control = control
        self.tasks = tasks
        #: names this popper's hold list (keys.py): unique per popper in the process
        self.tag = tag
        #: (hold, list): a hold list that may still hold an entry its caller never got; the
        #: next read moves it back to the head of its list first (normal channels)
        self.held: tuple[str, str] | None = None
        self._connection: AbstractConnection | None = None
        self._client_id: int | None = None
        self._unread = 0  # replies of ``then`` commands, read before the next replies
        self._abandoning = False
        self._busy: asyncio.Task[Any] | None = None  # a read abandoned by its caller

    @property
    def shard(self) -> Shard:
        return self.control.shard

    async def run(
        self,
        commands: Sequence[Command],
        *,
        then: Then | None = None,
        abandoned: Abandoned | None = None,
        holds: tuple[str, str] | None = None,
    ) -> list[Any]:
        """Replies to ``commands`` (error replies as values), written together.

        ``then(replies)`` gives commands written right after the replies came (an
        acknowledgement), whose replies are not waited for. ``holds`` becomes ``held`` as
        the read starts (the caller clears it once it has what was read). A lost connection
        raises redis-py's error. See the module docstring for cancellation.
        """
        await self.idle()
        loop = asyncio.get_running_loop()
        task = loop.create_task(self._run(commands, then, holds))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            self._abandoning = True
            cleanup = loop.create_task(self._abandon(task, abandoned))
            self._busy = cleanup
            self.tasks.add(cleanup)
            cleanup.add_done_callback(self.tasks.discard)
            raise

    async def read(self, commands: Sequence[Command]) -> list[Any]:
        """Replies to ``commands``, like ``run``, for a caller whose reads lose nothing when cut
        short (the inbox reader: what it reads stays in Redis until acknowledged): no task of
        its own, so a cancel drops the connection mid-read instead of finishing it."""
        await self.idle()
        return await self._run(commands, None, None)

    async def idle(self) -> None:
        """Return once a read its caller abandoned has finished, and what it read is back:
        only then do ``held`` and the connection say what they will say to the next read."""
        if self._busy is not None:
            await asyncio.shield(self._busy)

    async def release(self) -> None:
        """Give the connection back (after a read under way, if any, has finished)."""
        if self._busy is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._busy)
        await self._give_back()

    async def _give_back(self) -> None:
        connection, self._connection = self._connection, None
        self._client_id = None
        if connection is None:
            return
        try:
            async with asyncio.timeout(BLOCKING_SOCKET_TIMEOUT):
                for _ in range(self._unread):
                    with contextlib.suppress(ResponseError):
                        await connection.read_response()
        except Exception:
            await connection.disconnect()
        self._unread = 0
        await self.shard.release_blocking(connection)

    async def _run(
        self, commands: Sequence[Command], then: Then | None, holds: tuple[str, str] | None
    ) -> list[Any]:
        connection = self._connection
        key = _first_key(commands)
        try:
            async with asyncio.timeout(BLOCKING_SOCKET_TIMEOUT):
                if connection is not None and not self.shard.fits(connection, key):
                    await self._give_back()  # a cluster key on another node: that node's connection
                    connection = None
                async with connecting(self.shard.connect_timeout):
                    if connection is None:
                        connection = self._connection = await self.shard.acquire_blocking(key)
                        self._client_id = None
                        self._unread = 0
                    if not connection.is_connected:
                        await cast(Any, connection).connect()
                        self._client_id = None
                        self._unread = 0
                head: list[Command] = [] if self._client_id is not None else [("CLIENT", "ID")]
                if holds is not None:  # from here on the read may take an entry (not before:
                    self.held = holds  # a connect that failed holds nothing, loses nothing)
                await connection.send_packed_command(
                    pack_commands([*head, *commands]), check_health=False
                )
                for _ in range(self._unread):
                    with contextlib.suppress(ResponseError):
                        await connection.read_response()
                self._unread = 0
                if head:
                    self._client_id = await connection.read_response()
                replies: list[Any] = []
                for _ in commands:
                    try:
                        replies.append(await connection.read_response())
                    except ResponseError as exc:
                        replies.append(exc)
                more = then(replies) if then is not None and not self._abandoning else ()
                if more:
                    await connection.send_packed_command(pack_commands(more), check_health=False)
                    self._unread = len(more)
        except BaseException:
            await self._drop()
            raise
        moved = next((reply for reply in replies if isinstance(reply, AskError)), None)
        if moved is not None:  # a cluster slot moved: look it up, then read again
            await self._drop()
            await self.shard.blocking_failed(moved)
            raise RedisConnectionError(f"slot moved: {moved}") from moved
        return replies

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        self._client_id = None
        self._unread = 0
        if connection is not None:
            try:
                await connection.disconnect()
            finally:  # a second cancel (the reader's) must not keep it out of the pool
                await self.shard.release_blocking(connection)

    async def _abandon(self, task: asyncio.Task[list[Any]], abandoned: Abandoned | None) -> None:
        while not task.done() and self._client_id is None:
            # The read is still connecting: its id comes with its first reply.
            await asyncio.wait([task], timeout=0.01)
        client_id = self._client_id
        if not task.done() and client_id is not None:
            # If this fails, the read ends by itself within BLOCK_SECONDS.
            with contextlib.suppress(Exception):
                await self.control.run([("CLIENT", "UNBLOCK", client_id)])
        try:
            try:
                replies = await task
            except Exception:  # the connection broke: what was read stays in Redis (see above)
                return
            if abandoned is not None:
                # Still busy meanwhile: the next read must not start before what this one
                # read is put back, or it would move the held entry back too (twice over).
                await abandoned(replies)
        finally:
            self._busy = None
            self._abandoning = False


def _first_key(commands: Sequence[Command]) -> str:
    """The key a batch of reads is about (cluster: the node to connect to)."""
    for command in commands:
        if str(command[0]).upper() == "BLMOVE":
            return str(command[1])
        if str(command[0]).upper() == "EVALSHA":
            return str(command[3])
    return str(commands[-1][1])


__all__ = ["BLOCK_SECONDS", "Abandoned", "Popper", "Then"]
