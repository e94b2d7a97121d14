"""Blocking pops that can be cancelled without losing what Redis already handed over.

A ``BLMPOP`` that is cancelled on the client may have popped entries in Redis whose reply is
still on the wire; dropping the connection would lose them. So each pop runs in a task of its
own that is never cancelled, on a connection that does nothing else. Cancelling ``pop``:

1. tells Redis to end the pop now (``CLIENT UNBLOCK``, from another connection; the pop's
   connection reported its id with ``CLIENT ID`` when it was opened);
2. waits for the pop's reply, which is then empty, or holds entries if Redis served it
   first;
3. gives any such entries to ``restore`` (which puts them back at the head of their list),
   and only then lets the cancellation through. Steps 1-3 run in a task of their own (kept
   in ``tasks`` so that ``close()`` can wait for it), so a second cancellation cannot
   interrupt them.

A ``Popper`` keeps its connection (and its client id) from one pop to the next, and gives it
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
from channelworks.layers.redis.shard import BLOCK_SECONDS, Command, Shard

Restore = Callable[[list[bytes]], Awaitable[None]]
Popped = tuple[list[Any], list[bytes]]


class Popper:
    """Cancel-safe blocking pops on one shard (``control`` runs the ``CLIENT UNBLOCK``)."""

    def __init__(self, control: Pipeline, tasks: set[asyncio.Task[Any]]) -> None:
        self.control = control
        self.tasks = tasks
        self._connection: AbstractConnection | None = None
        self._client_id: int | None = None
        self._busy: asyncio.Task[Any] | None = None  # a pop abandoned by its caller

    @property
    def shard(self) -> Shard:
        return self.control.shard

    async def pop(
        self, key: str, count: int, restore: Restore, prelude: Sequence[Command] = ()
    ) -> Popped:
        """Pop up to ``count`` entries from the head of list ``key``, waiting BLOCK_SECONDS.

        ``prelude`` commands go first, in the same write; returns their replies (error replies
        as values) and the entries (``[]`` if none came in time). A lost connection raises
        redis-py's error. See the module docstring for cancellation.
        """
        if self._busy is not None:
            await asyncio.shield(self._busy)
        loop = asyncio.get_running_loop()
        task = loop.create_task(self._pop(key, count, prelude))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            cleanup = loop.create_task(self._abandon(task, restore))
            self._busy = cleanup
            self.tasks.add(cleanup)
            cleanup.add_done_callback(self.tasks.discard)
            raise

    async def release(self) -> None:
        """Give the connection back (after a pop under way, if any, has finished)."""
        if self._busy is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._busy)
        connection, self._connection = self._connection, None
        if connection is not None:
            await self.shard.release_blocking(connection)

    async def _pop(self, key: str, count: int, prelude: Sequence[Command]) -> Popped:
        connection = self._connection
        try:
            if connection is None:
                connection = self._connection = await self.shard.acquire_blocking(key)
                self._client_id = None
            if not connection.is_connected:
                await cast(Any, connection).connect()
                self._client_id = None
            commands: list[Command] = [] if self._client_id is not None else [("CLIENT", "ID")]
            commands += [*prelude, ("BLMPOP", BLOCK_SECONDS, 1, key, "LEFT", "COUNT", count)]
            await connection.send_packed_command(
                connection.pack_commands(commands), check_health=False
            )
            if self._client_id is None:
                self._client_id = await connection.read_response()
            replies: list[Any] = []
            for _ in prelude:
                try:
                    replies.append(await connection.read_response())
                except ResponseError as exc:
                    replies.append(exc)
            try:
                reply = await connection.read_response()
            except AskError as exc:  # a cluster slot moved: look it up, then pop again
                await self.shard.blocking_failed(exc)
                raise RedisConnectionError(f"{key} moved: {exc}") from exc
        except BaseException:
            await self._drop()
            raise
        return replies, (list(reply[1]) if reply else [])

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        self._client_id = None
        if connection is not None:
            await connection.disconnect()
            await self.shard.release_blocking(connection)

    async def _abandon(self, task: asyncio.Task[Popped], restore: Restore) -> None:
        while not task.done() and self._client_id is None:
            # The pop is still connecting: its id comes with its first reply.
            await asyncio.wait([task], timeout=0.01)
        client_id = self._client_id
        if not task.done() and client_id is not None:
            # If this fails, the pop ends by itself within BLOCK_SECONDS.
            with contextlib.suppress(Exception):
                await self.control.run([("CLIENT", "UNBLOCK", client_id)])
        try:
            _, entries = await task
        except Exception:  # the connection broke: Redis kept or lost them, we hold nothing
            return
        finally:
            self._busy = None
        if entries:
            await restore(entries)


__all__ = ["Popped", "Popper", "Restore"]
