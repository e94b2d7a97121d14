"""The epoch of each server's data: noticing that Redis lost it, and the restore window.

Rules of this file:
- every server (shard) of a layer that is not a cluster holds an epoch key (``P:epoch``,
  scripts.py ``EPOCH``): ``<id> <hold_until_ms>``. A server that restarted empty, failed over
  to a replica without the data, or was flushed by hand has lost it; the first process to
  find it missing makes a new id and, if it knew the old one, opens a *restore window*;
- a process learns each server's id as it looks (``saw``): its inbox reader looks at its own
  server after each wait (at least once a second), its watcher at the other servers once a
  second, its heartbeat at every server it writes to, and a held group send brings the new
  id with it. An id other than the one it knew means Redis lost this process's state there:
  counted (``stats.redis_restarts``), logged once, and the keeper beats at once, restoring
  this process's liveness and memberships from its own state;
- group sends (``GROUP_SEND``, ``GROUP_MEMBERS``) do not run while a window is open, or when
  the id their caller knows is not the server's: they push nothing and answer "held"; the
  caller has its own state restored (``wait_restored``), waits for the window to close,
  and sends again with the id it now knows (``known``);
- a Redis Cluster has no epoch (its keys are spread by slot, so one key cannot speak for
  every node): there a process restores its state when its reader reconnects and at each
  heartbeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from channelworks.layers.redis import scripts
from channelworks.layers.redis.keys import Keyspace
from channelworks.layers.redis.shard import Command
from channelworks.layers.redis.stats import RedisLayerStats

logger = logging.getLogger("channelworks.layers.redis")


class Epochs:
    """What one layer knows of its servers' epochs; see the module docstring."""

    def __init__(
        self,
        *,
        keys: Keyspace,
        pid: str,
        stats: RedisLayerStats,
        enabled: bool,
        window: float,
        ttl_ms: int,
        restore: Callable[[], bool],
        groups: Callable[[], int],
    ) -> None:
        self.keys = keys
        self.pid = pid
        self.stats = stats
        #: whether the servers have epochs (not a cluster)
        self.enabled = enabled
        #: seconds of the restore window this layer opens when it finds an epoch gone
        self.window = window
        self.ttl_ms = ttl_ms
        #: wakes the keeper on the running loop (-> False if there is none there)
        self.restore = restore
        self.groups = groups  # how many groups this process has members of (for the log)
        #: per shard, the id this process saw last
        self.known: dict[int, str] = {}
        #: per shard, the id the last heartbeat that worked wrote this process's state in
        self.restored: dict[int, str] = {}
        self._beaten: list[asyncio.Future[None]] = []

    def command(self, shard: int) -> Command:
        """The EPOCH call for ``shard``: renews its epoch, makes it if it is gone."""
        return scripts.EPOCH.command(
            (self.keys.epoch,),
            self.known.get(shard, ""),
            self.pid,
            int(self.window * 1000),
            self.ttl_ms,
        )

    def saw(self, shard: int, reply: list[object]) -> float:
        """An EPOCH or held reply of ``shard`` (``[..., value, now_ms]``): learn its epoch;
        a new one means Redis lost this process's state there (counted, logged, restored
        at once). -> seconds its restore window is still open."""
        value, now = reply[-2], reply[-1]
        text = value.decode() if isinstance(value, bytes) else str(value)
        epoch, _, hold = text.partition(" ")
        known = self.known.get(shard)
        self.known[shard] = epoch
        if known is not None and epoch != known:
            self.stats.redis_restarts += 1
            logger.warning(
                "Redis lost this layer's data (a restart, a failover or a flush; shard %d, "
                "epoch %s): restoring this process's liveness and its memberships of %d "
                "group(s); group sends wait for every live process to do the same (up to "
                "%.1f s)",
                shard,
                epoch,
                self.groups(),
                self.window,
            )
            self.restore()
        if not hold.isdigit() or not isinstance(now, int):
            return 0.0
        return max(0.0, (int(hold) - now) / 1000)

    def beaten(self, shards: dict[int, str]) -> None:
        """A heartbeat worked: its EPOCH calls saw ``shards`` (shard -> id) and it wrote this
        process's state after them; on the other shards it has no state to restore."""
        for shard, epoch in self.known.items():
            self.restored[shard] = shards.get(shard, epoch)
        beaten, self._beaten = self._beaten, []
        for future in beaten:
            if not future.done():
                future.set_result(None)

    async def wait_restored(self, shard: int, deadline: float) -> None:
        """Until a heartbeat has restored this process's state in ``shard``'s current epoch
        (or the loop's time reaches ``deadline``; at once if no keeper runs on this loop)."""
        loop = asyncio.get_running_loop()
        while self.restored.get(shard) != self.known.get(shard) and loop.time() < deadline:
            beaten = loop.create_future()
            self._beaten.append(beaten)
            if not self.restore():
                self._beaten.remove(beaten)
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(beaten, max(0.0, deadline - loop.time()))

    def rearm(self, command: Command, shard: int = 0) -> Command:
        """The GROUP_SEND ``command`` with the id this process knows now."""
        return scripts.rearm(command, self.known.get(shard, ""))


__all__ = ["Epochs"]
