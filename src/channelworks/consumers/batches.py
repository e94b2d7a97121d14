"""Channel layer messages for a consumer's sync handlers, handled several to a pool call.

Each sync handler call is a thread hop, which costs several times what the handler itself
does in a chat room. When a consumer's channel holds several messages for sync handlers (a
room whose sender runs ahead of its deliveries: sync_pool.py takes server events' calls
first), its reader hands them to the pool as one call, a ``Batch``.

Rules of this file:
- a batch is the message the reader took, then those waiting in the channel right after it,
  in order, while each one's handler is a sync handler already in the class's cache (at most
  ``SIZE``). The first message that is not ends the batch; the reader keeps it (``pending``)
  and handles it next, as it would have;
- in the worker the handlers run one after the other, each as a call of its own would (the
  database hygiene between two of them). Before each handler after the first, the batch stops
  if what the reader would do differently happened meanwhile: a task was created on the loop
  (it runs before the next message: turns.py), the server pump waits for its turn (server
  events and layer messages keep taking turns: base.py), or a send failed (the handler that
  sent it would have stopped there). The messages not handled go back to ``pending``, first
  in line;
- a handler that raises ends the batch: the reader handles that error for that message, as
  for a message alone; the messages after it stay in ``pending``;
- a handler that returns an awaitable (a sync-looking wrapper of an ``async def``) ends the
  batch too: the reader awaits it on the loop;
- operators see each message timed on its own (channelworks.ops).
"""

from __future__ import annotations

import inspect
from collections import deque
from collections.abc import Callable
from time import perf_counter
from typing import TYPE_CHECKING, Any

from channelworks.consumers.handlers import Mode, Resolution
from channelworks.consumers.sync_pool import send_failed
from channelworks.db import close_old_connections
from channelworks.types import Message

if TYPE_CHECKING:
    from channelworks.consumers.base import _Turn
    from channelworks.consumers.turns import TaskCount
    from channelworks.ops.connections import Connection

#: messages at most in one batch
SIZE = 64

#: a sync handler (its resolution's callable) and the message it is for
Handled = tuple[Callable[[Any, Any], Any], Message]


def gather(
    cls: type,
    cache: dict[object, Resolution],
    entry: Resolution,
    message: Message,
    waiting: Message,
    pending: deque[Message],
    poll: Callable[[str], Message | None],
    channel: str,
) -> deque[Handled] | None:
    """``message`` (for the sync handler of ``entry``) and the messages for sync handlers
    waiting after it: ``waiting``, then those in ``pending``, then in ``channel``; ``None`` if
    ``waiting`` is not for one (it goes back to ``pending``)."""
    batched = None
    threaded = Mode.THREAD
    while True:
        try:
            more: Resolution | None = cache[waiting.get("type")]
        except (KeyError, TypeError):  # not seen yet, or unhashable: handled on its own
            more = None
        if more is None or more[3] is not threaded or getattr(cls, more[0], None) is not more[1]:
            pending.appendleft(waiting)
            return batched
        if batched is None:
            batched = deque([(entry[2], message)])
        batched.append((more[2], waiting))
        if len(batched) >= SIZE:
            return batched
        next_one = pending.popleft() if pending else poll(channel)
        if next_one is None:
            return batched
        waiting = next_one


class Batch:
    """Messages of one consumer for sync handlers; called in a worker, it handles them.

    The worker takes each message from ``waiting`` as it starts its handler, and the reader
    takes back those left (``rest``): each one is taken by one side only, even when the reader
    is cancelled while the batch runs (the handler running then runs to its end, as a single
    call's would).
    """

    __slots__ = ("consumer", "error", "last", "result", "tasks", "timings", "turn", "waiting")

    def __init__(
        self,
        consumer: object,
        waiting: deque[Handled],
        tasks: TaskCount,
        turn: _Turn,
        timed: bool,
    ) -> None:
        self.consumer = consumer
        self.waiting = waiting
        self.tasks = tasks
        self.turn = turn
        self.last: Message | None = None  # the message whose handler ran last
        self.error: Exception | None = None  # what that handler raised
        self.result: Any = None  # the awaitable that handler returned
        #: (type, seconds) per message handled, if operators time handlers
        self.timings: list[tuple[object, float]] | None = [] if timed else None

    def __call__(self) -> None:
        """Run the handlers (in a worker of the sync pool, as the batch's call)."""
        consumer, tasks, turn, timings = self.consumer, self.tasks, self.turn, self.timings
        waiting = self.waiting
        created = tasks.created
        started = 0.0
        while waiting:
            if self.last is not None and (  # not the first: anything the reader would heed?
                tasks.created != created or turn.waiting is not None or send_failed()
            ):
                return
            try:
                handler, message = waiting.popleft()
            except IndexError:  # the reader took the rest back
                return
            if self.last is not None:
                close_old_connections()  # as between two calls (sync_pool.py)
            self.last = message
            if timings is not None:
                started = perf_counter()
            try:
                result = handler(consumer, message)
            except Exception as exc:  # the reader handles it, for this message
                self.error = exc
                return
            finally:
                if timings is not None:
                    timings.append((message.get("type"), perf_counter() - started))
            if result is not None and inspect.isawaitable(result):
                self.result = result
                return

    def rest(self, pending: deque[Message]) -> None:
        """Put the messages the worker did not take back in front of ``pending``, in order."""
        waiting = self.waiting
        while waiting:
            try:
                pending.appendleft(waiting.pop()[1])
            except IndexError:  # the worker took the last one meanwhile
                return

    def report(self, observed: Connection) -> float:
        """Give operators the timings of the messages handled but the last; return the last's
        (the reader records it as that of the message it handled)."""
        timings = self.timings
        if not timings:
            return 0.0
        for kind, elapsed in timings[:-1]:
            observed.handled(kind, elapsed)
        return timings[-1][1]


__all__ = ["SIZE", "Batch", "gather"]
