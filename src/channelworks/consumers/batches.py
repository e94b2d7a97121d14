"""Channel layer messages for a consumer's sync handlers, handled several to a pool call, or
along with the call of a frame's sync ``receive``.

Each sync handler call is a thread hop, which costs several times what the handler itself
does in a chat room. When a consumer's channel holds several messages for sync handlers (a
room whose sender runs ahead of its deliveries: sync_pool.py takes server events' calls
first), its reader hands them to the pool as one call, a ``Batch``.

Rules of this file:
- a batch is the message the reader took (for a sync handler), then those waiting in the
  channel right after it, in order, while they are of its type (at most ``SIZE``). The first
  message that is not ends the batch; the reader keeps it (``pending``) and handles it next,
  as it would have;
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
- operators see each message timed on its own (channelworks.ops);
- a message for a sync handler that the reader takes while its consumer's sync ``receive``
  runs in a worker is offered to that call (``Offers``), which handles it after the hook, as
  the reader would have right after. Each offer is taken by one side: the worker, or the
  reader taking it back once it has the turn.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
from collections import deque
from collections.abc import Callable
from time import perf_counter
from typing import TYPE_CHECKING, Any

from asgiref.sync import SyncToAsync

from channelworks.consumers.handlers import Mode, Resolution
from channelworks.consumers.sync_pool import STALL, current_call, let_loop_run, send_failed
from channelworks.db import close_old_connections
from channelworks.types import Message

if TYPE_CHECKING:
    from channelworks.consumers.base import _Turn
    from channelworks.consumers.turns import TaskCount
    from channelworks.ops.connections import Connection

#: messages at most in one batch
SIZE = 64


def gather(
    message: Message,
    waiting: Message,
    pending: deque[Message],
    poll: Callable[[str], Message | None],
    channel: str,
) -> deque[Message] | None:
    """``message`` (for a sync handler) and the messages of its type waiting after it:
    ``waiting``, then those in ``pending``, then in ``channel``; ``None`` if ``waiting`` is
    not of that type (it goes back to ``pending``).

    One type, so one handler (its resolution was checked for ``message``) and one timing for
    operators: a batch holds the messages alone, no object per message that would live until
    it is handled (a room queues thousands; the garbage collector visits each one it finds).
    """
    kind = message.get("type")
    batched = None
    while True:
        other = waiting.get("type")
        if other.__class__ is not str or other != kind:  # another type: handled on its own
            pending.appendleft(waiting)
            return batched
        if batched is None:
            batched = deque((message,))
        batched.append(waiting)
        if len(batched) >= SIZE:
            return batched
        next_one = pending.popleft() if pending else poll(channel)
        if next_one is None:
            return batched
        waiting = next_one


class Batch:
    """Messages of one type for a consumer's sync handler; called in a worker, it handles them.

    The worker takes each message from ``waiting`` as it starts its handler, and the reader
    takes back those left (``rest``): each one is taken by one side only, even when the reader
    is cancelled while the batch runs (the handler running then runs to its end, as a single
    call's would).
    """

    __slots__ = (
        "consumer",
        "error",
        "handler",
        "last",
        "result",
        "tasks",
        "timings",
        "turn",
        "waiting",
    )

    def __init__(
        self,
        consumer: object,
        handler: Callable[[Any, Any], Any],
        waiting: deque[Message],
        tasks: TaskCount,
        turn: _Turn,
        timed: bool,
    ) -> None:
        self.consumer = consumer
        self.handler = handler
        self.waiting = waiting
        self.tasks = tasks
        self.turn = turn
        self.last: Message | None = None  # the message whose handler ran last
        self.error: Exception | None = None  # what that handler raised
        self.result: Any = None  # the awaitable that handler returned
        #: seconds per message handled, if operators time handlers
        self.timings: list[float] | None = [] if timed else None

    def __call__(self) -> None:
        """Run the handlers (in a worker of the sync pool, as the batch's call)."""
        consumer, handler, tasks, turn = self.consumer, self.handler, self.tasks, self.turn
        waiting, timings = self.waiting, self.timings
        created = tasks.created
        started = 0.0
        while waiting:
            if self.last is not None and (  # not the first: anything the reader would heed?
                tasks.created != created or turn.waiting is not None or send_failed()
            ):
                return
            try:
                message = waiting.popleft()
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
                    timings.append(perf_counter() - started)
            if result is not None and inspect.isawaitable(result):
                self.result = result
                return

    def rest(self, pending: deque[Message]) -> None:
        """Put the messages the worker did not take back in front of ``pending``, in order."""
        waiting = self.waiting
        while waiting:
            try:
                pending.appendleft(waiting.pop())
            except IndexError:  # the worker took the last one meanwhile
                return

    def report(self, observed: Connection) -> float:
        """Give operators the timings of the messages handled but the last; return the last's
        (the reader records it as that of the message it handled)."""
        timings = self.timings
        if not timings:
            return 0.0
        if len(timings) > 1 and self.last is not None:
            kind = self.last.get("type")
            for elapsed in timings[:-1]:
                observed.handled(kind, elapsed)
        return timings[-1]


class Offered:
    """A layer message for a sync handler that the reader offers to the call running its
    consumer's ``receive`` hook, while it waits for that turn (``Offers``).

    Taken (by the worker) or withdrawn (by the reader, once it has the turn): each offer is
    taken from ``Offers.waiting`` by one side only. Once taken, ``done`` tells the handler
    ran; ``error``, ``result`` and ``elapsed`` are what a call of its own would have given.
    """

    __slots__ = (
        "consumer",
        "context",
        "done",
        "elapsed",
        "error",
        "handler",
        "message",
        "result",
        "waiting",
    )

    def __init__(
        self,
        consumer: object,
        handler: Callable[[Any, Any], Any],
        message: Message,
        waiting: deque[Offered],
    ) -> None:
        self.consumer = consumer
        self.waiting = waiting  # the offers of the hook's call, this one among them
        self.handler = handler
        self.message = message
        self.context = contextvars.copy_context()  # the reader's, as its own call would have
        self.done = False
        self.elapsed = 0.0
        self.error: Exception | None = None
        self.result: Any = None  # an awaitable the handler returned (awaited by the reader)

    def __call__(self) -> None:
        """In the worker, after the hook: run the handler."""
        close_old_connections()  # as between two calls (sync_pool.py)
        started = perf_counter()
        try:
            result = self.context.run(self.handler, self.consumer, self.message)
            if result is not None and inspect.isawaitable(result):
                self.result = result
        except Exception as exc:  # the reader handles it, for this message
            self.error = exc
        finally:
            self.elapsed = perf_counter() - started
            self.done = True

    def withdraw(self) -> bool:
        """Take the offer back: False if the worker took it first (it runs, or ran, there)."""
        try:
            self.waiting.remove(self)  # atomic: compares by identity, no Python code runs
        except ValueError:  # taken by the worker
            return False
        return True

    async def settled(self) -> bool:
        """Whether the handler ran in the hook's call (on the loop, the reader holding the
        turn); if not, the offer is withdrawn and the reader handles the message itself."""
        if not self.withdraw():  # taken by the worker
            # Done, unless the task awaiting the hook's call was cancelled while it ran (the
            # consumer ends): rare, and a worker cannot set an asyncio.Event, so poll.
            while not self.done:  # noqa: ASYNC110
                await asyncio.sleep(STALL)
            return True
        return False


class Offers:
    """The call of a frame's sync ``receive`` hook; after the hook, it handles the layer
    messages offered to it meanwhile, as the reader would have right after (the reader
    waits for that turn).

    The sender of the tutorial's room gets its own copy of every message it sends while its
    ``receive`` runs; taken along, it costs no thread hop and no call of its own, and the
    sender's next frame does not wait for one. Nothing is taken after a hook that raised or
    returned an awaitable (the loop has the next step), after a task was created on the loop
    where the hook's code may have made it (it runs first: turns.py), or once a send failed
    (the reader then handles the message itself, which sees the error).
    """

    __slots__ = ("boundary", "created", "hook", "kwargs", "ran", "tasks", "waiting")

    def __init__(self, hook: Callable[..., Any], kwargs: dict[str, Any], tasks: TaskCount) -> None:
        self.hook = hook
        self.kwargs = kwargs
        self.tasks = tasks
        self.created = tasks.from_threads
        self.waiting: deque[Offered] = deque()
        #: the offer that ran, and how many sends the call had handed over before it: a
        #: send failing from there on is its handler's (``failure``)
        self.ran: Offered | None = None
        self.boundary = 0

    def __call__(self) -> Any:
        local = SyncToAsync.threadlocal
        spawned = local.task_context = _Spawned()
        try:
            result = self.hook(**self.kwargs)
        finally:
            local.task_context = None
        if result is not None and inspect.isawaitable(result):
            return result
        waiting = self.waiting
        if not waiting and not spawned.joined:
            return result  # nothing offered, and no async_to_sync that could bring a message
        # The loop runs first: the reader, if a message came since it last ran (the hook's
        # group_send to its own group), offers it; a task the hook started from its thread
        # (run_coroutine_threadsafe) is made and counted; the hook's sends go out.
        let_loop_run()
        call = current_call()
        tasks = self.tasks
        if (
            not waiting
            or call is None
            or call.posted != call.sent  # the hook's sends are not all done (or one failed)
            or call.failed is not None
            or tasks.from_threads != self.created  # a task the hook started runs first
            or not tasks.reliable  # tasks may be made uncounted: take no risk
        ):
            return result
        try:
            offered = waiting.popleft()
        except IndexError:  # withdrawn meanwhile
            return result
        self.ran, self.boundary = offered, call.posted
        offered()
        return result

    def failure(self, call: Any, exc: BaseException) -> bool:
        """On the loop, the hook's call having raised ``exc``: whether it is the failure of a
        send of the offered handler (then its error, not the frame's)."""
        ran = self.ran
        if ran is None or call.failed is not exc or call.failed_at < self.boundary:
            return False
        if ran.error is None and isinstance(exc, Exception):
            ran.error = exc
        return True


class _Spawned(list[Any]):
    """What ``async_to_sync`` is given as its thread's task context (asgiref's thread-local
    ``task_context``: the list its task joins while it runs): counts the tasks that joined,
    telling that the hook called ``async_to_sync``. A hint only: without it, an offer made
    late is withdrawn, and its message handled on its own as before."""

    joined = 0

    def append(self, task: Any) -> None:
        self.joined += 1
        super().append(task)


def offer(
    offers: Offers,
    cls: type,
    cache: dict[object, Resolution],
    consumer: object,
    message: Message,
) -> Offered | None:
    """Offer ``message`` to the running hook's call if its handler is a sync handler already
    in the class's cache (as ``gather`` takes them); else ``None``."""
    try:
        entry: Resolution | None = cache[message.get("type")]
    except (KeyError, TypeError):
        return None
    if entry is None or entry[3] is not Mode.THREAD or getattr(cls, entry[0], None) is not entry[1]:
        return None
    offered = Offered(consumer, entry[2], message, offers.waiting)
    offers.waiting.append(offered)
    return offered


__all__ = ["SIZE", "Batch", "Offered", "Offers", "gather", "offer"]
