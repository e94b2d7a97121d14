"""The keeper: one task per layer that says "this process is alive" and renews memberships.

Every ``interval`` seconds (and at once after ``wake()``, which the layer calls when its
inbox reader gets its connection back or anyone finds that Redis lost its data: a new epoch)
it awaits ``beat``, the layer's heartbeat: the epoch (single server), ``SET alive PX
process_timeout``, ``ZADD GT @pid`` for each group this process has members of, and the
overflow sweep, in one round trip per shard. A failed beat is logged at WARNING once per
outage (and once more when it works again) and retried at the next tick; the keeper never
stops by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger("channelworks.layers.redis")


class Keeper:
    """Runs ``beat`` every ``interval`` seconds until cancelled."""

    def __init__(self, beat: Callable[[], Awaitable[None]], interval: float) -> None:
        self.beat = beat
        self.interval = interval
        self._wake = asyncio.Event()
        self.failing = False

    def wake(self) -> None:
        """Beat now rather than at the next tick (safe to call from the keeper's loop only)."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                await self.beat()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not self.failing:
                    logger.warning("Redis layer heartbeat failed, retrying: %s", exc)
                self.failing = True
            else:
                if self.failing:
                    logger.warning("Redis layer heartbeat works again")
                self.failing = False
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)


__all__ = ["Keeper"]
