"""Commands to one shard: concurrent calls share round trips; lost connections are retried.

Rules of this file:
- ``call`` runs at once while fewer than ``max_in_flight`` round trips are under way; past
  that, calls wait in a queue and go out together, as one batch per freed slot. A lone caller
  therefore pays one round trip and no scheduling delay, and many concurrent callers pay a
  round trip per batch, not per call. One caller's calls are awaited one after the other, so
  they reach Redis in the order made (order per sender);
- a broken connection is retried with exponential backoff and jitter until ``retry_timeout``
  seconds have passed since the first failure, then the redis-py error is raised for the
  caller to report. A batch that broke after Redis ran it but before its reply arrived is run
  again: in that window a command may run twice (at least once), never zero times unseen.
  Except after a *timeout* (Redis is slow, not gone: it most likely runs the command anyway):
  a batch holding a command that is not idempotent (a push, a send script) is then not
  retried and the error is raised at once (the caller raises ``RedisUnavailable``, counted),
  so a stall cannot turn one send into several. A connect (handshake included) is bounded
  by what is left of ``retry_timeout`` and counts as failed from its start, so a server that
  accepts connections and never answers fails the call within about ``retry_timeout``;
- ``NOSCRIPT`` (scripts lost with a restart or ``SCRIPT FLUSH``) loads every script and runs
  the refused commands again, once.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Sequence
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

from channelworks.layers.base import background_task
from channelworks.layers.redis import scripts
from channelworks.layers.redis.shard import Command, ConnectTimeout, Shard

#: errors after which the connection is gone and the command can be tried again
RETRYABLE = (RedisConnectionError, RedisTimeoutError, OSError)
#: seconds the last connect attempt of a call gets at least
MIN_CONNECT = 0.2
#: commands that may run twice with the same effect as once
_IDEMPOTENT = frozenset(
    {"SET", "GET", "DEL", "UNLINK", "EXISTS", "ZADD", "ZREM", "SCAN", "SCRIPT", "CLIENT"}
)
_IDEMPOTENT_SCRIPTS = frozenset(
    {scripts.GROUP_ADD.sha, scripts.GROUP_MEMBERS.sha, scripts.EPOCH.sha}
)


def idempotent(command: Command) -> bool:
    """Whether running ``command`` twice does what running it once does."""
    name = str(command[0]).upper()
    if name == "EVALSHA":
        return command[1] in _IDEMPOTENT_SCRIPTS
    return name in _IDEMPOTENT


def backoff(attempt: int, *, base: float = 0.05, cap: float = 1.0) -> float:
    """Seconds to wait before retry ``attempt`` (0, 1, …): doubling, capped, +-50% jitter."""
    return float(min(cap, base * 2.0**attempt)) * random.uniform(0.5, 1.5)


class Pipeline:
    """Runs commands on ``shard`` for one event loop; see the module docstring."""

    def __init__(
        self,
        shard: Shard,
        *,
        retry_timeout: float = 3.0,
        max_in_flight: int = 4,
        max_batch: int = 512,
    ) -> None:
        self.shard = shard
        self.retry_timeout = retry_timeout
        self.max_in_flight = max_in_flight
        self.max_batch = max_batch
        self._in_flight = 0
        self._queue: deque[tuple[Command, asyncio.Future[Any]]] = deque()
        self._tasks: set[asyncio.Task[None]] = set()

    async def call(self, command: Command) -> Any:
        """The reply to ``command``; an error reply is raised."""
        if self._in_flight < self.max_in_flight and not self._queue:
            self._in_flight += 1
            try:
                (reply,) = await self.run([command])
            finally:
                self._in_flight -= 1
                self._drain()
        else:
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._queue.append((command, future))
            reply = await future
        if isinstance(reply, Exception):
            raise reply
        return reply

    def submit(self, commands: Sequence[Command]) -> list[asyncio.Future[Any]]:
        """Queue ``commands`` without waiting; -> a future of each one's reply.

        They go out with the next batch (several round trips only past ``max_batch``), in
        order; an error reply is a future's *result*, a failed round trip its exception.
        """
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[Any]] = []
        for command in commands:
            future: asyncio.Future[Any] = loop.create_future()
            self._queue.append((command, future))
            futures.append(future)
        self._drain()
        return futures

    async def run(self, commands: Sequence[Command], *, reload: bool = True) -> list[Any]:
        """Replies to ``commands``, sent together in one round trip (retried, see above)."""
        loop = asyncio.get_running_loop()
        first_failure: float | None = None
        attempt = 0
        while True:
            started = loop.time()
            # A connection to make may take what is left of retry_timeout, no more (but
            # long enough to hear a refusal, whose error says more than a timeout's).
            left = max(MIN_CONNECT, self.retry_timeout - (started - (first_failure or started)))
            try:
                replies = await self.shard.execute(commands, connect_within=left)
                break
            except RETRYABLE as exc:
                if isinstance(exc, (TimeoutError, RedisTimeoutError)) and not all(
                    map(idempotent, commands)
                ):
                    raise RedisTimeoutError(
                        "no reply within the socket timeout; not retried, as the command "
                        "may have run"
                    ) from exc
                now = loop.time()
                if first_failure is None:
                    # a connect that found no answer failed from its start
                    first_failure = started if isinstance(exc, ConnectTimeout) else now
                if now - first_failure >= self.retry_timeout:
                    raise
                await asyncio.sleep(backoff(attempt, cap=0.5))
                attempt += 1
        refused = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if refused and reload:
            await self.shard.load_scripts([script.source for script in scripts.ALL])
            again = await self.run([commands[i] for i in refused], reload=False)
            for index, reply in zip(refused, again, strict=True):
                replies[index] = reply
        return replies

    def _drain(self) -> None:
        while self._queue and self._in_flight < self.max_in_flight:
            batch: list[tuple[Command, asyncio.Future[Any]]] = []
            while self._queue and len(batch) < self.max_batch:
                command, future = self._queue.popleft()
                if not future.done():  # a caller cancelled before it went out: not sent
                    batch.append((command, future))
            if batch:
                self._in_flight += 1
                task = asyncio.get_running_loop().create_task(self._flush(batch))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    @background_task
    async def _flush(self, batch: list[tuple[Command, asyncio.Future[Any]]]) -> None:
        try:
            replies = await self.run([command for command, _ in batch])
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
        else:
            for (_, future), reply in zip(batch, replies, strict=True):
                if not future.done():
                    future.set_result(reply)
        finally:
            self._in_flight -= 1
            self._drain()

    async def aclose(self) -> None:
        """Wait for batches under way, then close the shard's connections."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for _, future in self._queue:
            future.cancel()
        self._queue.clear()
        await self.shard.aclose()


__all__ = ["RETRYABLE", "Pipeline", "backoff"]
