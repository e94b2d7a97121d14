"""A layer's ways to Redis: connections per event loop, and commands with error reporting.

Rules of this file:
- connections (asyncio streams) belong to one event loop. ``Links.here()`` gives the
  *home* loop's, kept for the layer's life, when called on it; on any other loop (a thread's
  ``async_to_sync``) it gives new ones that the caller closes before it returns;
- the home loop is the first loop the layer does I/O on. If that loop ends without
  ``close()``, its connections are closed by the loop's ``shutdown_asyncgens()`` (which
  ``asyncio.run`` and asgiref call) through ``_guard``, inside the loop, instead of being
  left to the garbage collector; a loop closed by hand without that (``run_until_complete``
  then ``close()``, as some test suites do) runs the same cleanup from its ``close()``
  (``_close_home_with``); the next loop to use the layer becomes home;
- a command that cannot reach Redis within ``retry_timeout`` raises ``RedisUnavailable``,
  counted in ``stats.redis_errors`` and logged at ERROR, here and nowhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncGenerator, Callable
from typing import Any

from channelworks.layers.redis.errors import RedisUnavailable
from channelworks.layers.redis.hosts import HostSpec, pick_shard
from channelworks.layers.redis.keeper import Keeper
from channelworks.layers.redis.pipeline import RETRYABLE, Pipeline
from channelworks.layers.redis.pop import Popper
from channelworks.layers.redis.reader import InboxReader
from channelworks.layers.redis.shard import BLOCK_SECONDS, Command, open_shard
from channelworks.layers.redis.stats import RedisLayerStats
from channelworks.logs import AggregatedLog

logger = logging.getLogger("channelworks.layers.redis")


class Connections:
    """Pipelines (and idle blocking poppers) to every shard, for one event loop."""

    def __init__(self, hosts: list[HostSpec], retry_timeout: float) -> None:
        self.loop = asyncio.get_running_loop()
        #: the loop when it is asyncio's own: it knows the thread that runs it (``here``)
        self.base_loop = self.loop if isinstance(self.loop, asyncio.BaseEventLoop) else None
        self.pipelines = [Pipeline(open_shard(spec), retry_timeout=retry_timeout) for spec in hosts]
        #: cleanup tasks of cancelled pops; waited for before the connections close
        self.tasks: set[asyncio.Task[Any]] = set()
        #: per shard, poppers (blocking connections) not in use by a receive
        self.poppers: list[list[Popper]] = [[] for _ in hosts]
        #: normal-channel receives under way (their task, set when they have let go)
        self.receivers: dict[asyncio.Task[Any], asyncio.Event] = {}
        self.closed = False

    async def aclose(self) -> None:
        self.closed = True
        if self.receivers:
            # End receives still waiting on a normal channel (they raise LayerClosed); a pop
            # they had under way is unblocked and what it took is put back (pop.py).
            ended = [event.wait() for event in self.receivers.values()]
            for task in self.receivers:
                task.cancel()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*ended), BLOCK_SECONDS + 5)
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)
        for idle in self.poppers:
            for popper in idle:
                await popper.release()
            idle.clear()
        for pipeline in self.pipelines:
            await pipeline.aclose()


class Home(Connections):
    """The home loop's connections, with the inbox reader and the keeper running on it."""

    reader: InboxReader | None = None
    reader_task: asyncio.Task[None] | None = None
    keeper: Keeper | None = None
    keeper_task: asyncio.Task[None] | None = None
    #: a sharded layer's look at the other servers' epochs (epochs.py), once a second
    watcher_task: asyncio.Task[None] | None = None
    guard: AsyncGenerator[None, None] | None = None
    alive: tuple[int, str] | None = None  # (shard, key) of the alive key once set
    #: per shard, the commands that take the process out of its groups as it stops
    farewell: Callable[[], dict[int, list[Command]]] | None = None

    def __init__(self, hosts: list[HostSpec], retry_timeout: float) -> None:
        super().__init__(hosts, retry_timeout)
        #: sends to process-local channels made in this loop iteration, per target process:
        #: each batch goes to Redis as one call (sends.py, ``SendBatch``)
        self.batches: dict[str, Any] = {}
        #: sends to process-local channels whose caller has not resumed with its outcome
        self.sending = 0

    async def aclose(self) -> None:
        tasks = [
            t for t in (self.watcher_task, self.keeper_task, self.reader_task) if t is not None
        ]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.alive is not None:
            # Say goodbye (after the keeper stopped, so no heartbeat adds it back): out of the
            # groups, so nobody finds this process there as a dead member, and not alive, so
            # members of this process stop getting group messages at once. Best effort: a
            # group_send removes what is left.
            batches = self.farewell() if self.farewell is not None else {}
            index, key = self.alive
            batches.setdefault(index, []).append(("DEL", key))
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    asyncio.gather(
                        *(self.pipelines[i].shard.execute(batch) for i, batch in batches.items())
                    ),
                    1.0,
                )
        await super().aclose()


def _close_home_with(loop: asyncio.AbstractEventLoop, links: Links) -> None:
    """Make ``loop.close()`` close ``links``' home first if it is still this loop's.

    Hazard: a loop closed without ``shutdown_asyncgens()`` would leave the reader and keeper
    tasks pending and the ``_guard`` generator open, destroyed later by the garbage collector
    at any point of the program (their finalizers log and run code then). Once per loop; a
    loop whose ``close`` cannot be replaced (uvloop) is left alone.
    """
    original = loop.close
    if getattr(original, "_channelworks_closes_home", False):
        return

    def close() -> None:
        home = links.home
        if home is not None and home.loop is loop and not (loop.is_running() or loop.is_closed()):
            with contextlib.suppress(Exception):
                loop.run_until_complete(links.aclose())
        original()

    close._channelworks_closes_home = True  # type: ignore[attr-defined]
    with contextlib.suppress(AttributeError):
        loop.close = close  # type: ignore[method-assign]


class Links:
    """Where a layer's keys live and how its commands get there; see the module docstring."""

    def __init__(
        self,
        hosts: list[HostSpec],
        retry_timeout: float,
        stats: RedisLayerStats,
        log_lines: AggregatedLog,
    ) -> None:
        self.hosts = hosts
        self.log_lines = log_lines
        self.retry_timeout = retry_timeout
        self.stats = stats
        self.identities = [spec.identity for spec in hosts]
        #: one server (or Sentinel master): a script may touch any key
        self.single_server = len(hosts) == 1 and not hosts[0].cluster_nodes
        self.home: Home | None = None

    def at_home(self) -> Home | None:
        """The home loop's connections if the running loop is the home loop, else None.

        Hot (once per send). An asyncio loop is asked which thread runs it: one thread runs
        one loop at a time, so a match means the running loop is home, and that costs less
        than ``asyncio.get_running_loop()``, which makes a ``getpid()`` system call on
        Python 3.11. Other loops (uvloop) are compared with the running loop.
        """
        home = self.home
        if home is None:
            return None
        base = home.base_loop
        if base is not None:
            running: int | None = base._thread_id  # type: ignore[attr-defined]
            return home if running == threading.get_ident() else None
        return home if home.loop is asyncio.get_running_loop() else None

    def shard_of(self, routing_name: str) -> int:
        """The shard of keys routed by ``routing_name`` (the part in braces)."""
        return pick_shard(routing_name, self.identities) if len(self.identities) > 1 else 0

    async def here(self) -> tuple[Connections, bool]:
        """Connections for the running loop, and whether they are the home loop's (kept).

        Connections that are not the home loop's must be closed by the caller.
        """
        loop = asyncio.get_running_loop()
        home = self.home
        if home is not None and home.loop is loop:
            return home, True
        if home is not None and home.loop.is_closed():
            # Its loop ended without close() and without shutting down async generators:
            # nothing can be closed any more; start afresh on this loop.
            self.home = home = None
        if home is None:
            home = self.home = Home(self.hosts, self.retry_timeout)
            home.guard = self._guard(home)
            await home.guard.__anext__()
            _close_home_with(loop, self)
            return home, True
        return Connections(self.hosts, self.retry_timeout), False

    async def _guard(self, home: Home) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            if self.home is home:
                self.home = None
                await home.aclose()

    async def aclose(self) -> None:
        """Close the home loop's connections, reader and keeper (call it on that loop)."""
        home, self.home = self.home, None
        if home is not None:
            await home.aclose()
            if home.guard is not None:
                await home.guard.aclose()

    async def call(self, index: int, command: Command, operation: str, target: str) -> Any:
        """The reply to ``command`` on shard ``index``; an error reply is raised."""
        home = self.at_home()
        if home is not None:
            pipeline = home.pipelines[index]
            try:
                return await pipeline.call(command)
            except RETRYABLE as exc:
                raise self.unavailable(operation, target, pipeline, exc) from exc
        (reply,) = await self.batch(index, [command], operation, target)
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def batch(
        self, index: int, commands: list[Command], operation: str, target: str
    ) -> list[Any]:
        """Replies to ``commands``, run together on shard ``index`` (error replies as values)."""
        connections, own = await self.here()
        pipeline = connections.pipelines[index]
        try:
            replies = await pipeline.run(commands)
        except RETRYABLE as exc:
            raise self.unavailable(operation, target, pipeline, exc) from exc
        finally:
            if not own:
                await connections.aclose()
        # A cluster pipeline gives a connection lost while reading its replies as a value.
        lost = next((reply for reply in replies if isinstance(reply, RETRYABLE)), None)
        if lost is not None:
            raise self.unavailable(operation, target, pipeline, lost) from lost
        return replies

    def unavailable(
        self, operation: str, target: str, pipeline: Pipeline, exc: BaseException
    ) -> RedisUnavailable:
        """Count and log that ``operation`` on ``target`` failed; the error to raise."""
        self.stats.redis_errors += 1
        identity = pipeline.shard.spec.identity
        error = RedisUnavailable(operation, target, identity, str(exc))
        self.log_lines.event(
            logger,
            ("unavailable", operation, identity),
            logging.ERROR,
            "Redis layer: {error} ({count} failed {operation} call(s); counted in "
            "stats.redis_errors)",
            error=error,
            operation=operation,
        )
        return error


__all__ = ["Connections", "Home", "Links"]
