"""When a consumer gives the event loop a turn between two of its messages.

Rule (as in Channels): tasks a handler started run, up to their first wait, before the next
message of the same consumer is handled. A turn costs a task step per message, which would
double the cost of a fan-out, so it is given only when a task was created on the loop since
the consumer's last message was handed over (by its handler or, rarely, by anyone else: a
turn too many costs a little, one too few breaks the rule). ``TaskCount`` counts the loop's
task creations through its task factory (wrapping any factory already set). A loop whose
factory is replaced after ours cannot be counted; then every message gets its turn
(``TaskCount.reliable`` is false).

Not counted: the task ``async_to_sync`` makes on the loop for a worker thread (a sync
handler's ``group_send``). The thread waits for it to end, so it has ended before the handler
does; counting it would give every consumer a turn per message in a room whose handlers are
sync. The sync pool hears of it instead (``thread_waits``): what the waiting worker handed
over so far goes out. Nor are a layer's own background tasks (``background_task``, a flusher
of queued group sends): nobody waits for their first step.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any, ClassVar

from asgiref.sync import AsyncToSync

from channelworks.consumers.sync_pool import thread_waits
from channelworks.layers.base import BACKGROUND_TASK_CODES

#: the coroutine ``async_to_sync`` runs on the loop for a thread (asgiref's ``main_wrap``)
_ASYNC_TO_SYNC = AsyncToSync.main_wrap.__code__


class TaskCount:
    """How many tasks the loop created so far (read ``created``, and ``from_threads``); one
    per loop (``of``)."""

    _counts: ClassVar[weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, TaskCount]] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # Weak: the loop holds the factory, which holds this count; a strong reference back
        # would keep every loop that ever ran a consumer alive through ``_counts``.
        self._loop = weakref.ref(loop)
        self.created = 0
        #: of those, the ones created where a sync handler's code may have: outside the
        #: loop's tasks (a callback: ``run_coroutine_threadsafe``), or inside the task
        #: ``async_to_sync`` runs for a thread. A frame's sync call takes no layer message
        #: along once this moved (batches.Offers): the task runs first.
        self.from_threads = 0
        previous = loop.get_task_factory()

        def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
            task: asyncio.Future[Any]
            if previous is None:
                task = asyncio.Task(coro, loop=loop, **kwargs)
            else:
                task = previous(loop, coro, **kwargs)
            code = getattr(coro, "cr_code", None)
            if code is _ASYNC_TO_SYNC:
                thread_waits(task)
            elif code not in BACKGROUND_TASK_CODES:
                self.created += 1
                # by a worker thread's code? (no task of the loop's own made it, or one
                # that async_to_sync runs for a thread)
                current = asyncio.current_task(loop)
                if current is None or getattr(current.get_coro(), "cr_code", None) is (
                    _ASYNC_TO_SYNC
                ):
                    self.from_threads += 1
            return task

        self.factory = factory
        loop.set_task_factory(factory)

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> TaskCount:
        count = cls._counts.get(loop)
        if count is None:
            count = cls._counts[loop] = cls(loop)
        return count

    @property
    def reliable(self) -> bool:
        """Whether every task creation on the loop still goes through the count."""
        loop = self._loop()
        return loop is not None and loop.get_task_factory() is self.factory


__all__ = ["TaskCount"]
