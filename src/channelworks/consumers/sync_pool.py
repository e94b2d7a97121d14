"""Sync handlers and hooks in worker threads: many per thread hop, and sends without a wait.

A thread hop (the loop hands a call to a thread, the thread hands the result back) costs more
than a whole async handler, and the sync consumer's API used to make two per message (the
handler, then ``self.send`` back to the loop). Here the hops are shared.

Rules of this file:
- a sync handler or hook runs in a worker thread of a pool shared by the process
  (``CHANNELWORKS_SYNC_THREADS`` threads at most, default 32), in a copy of the context of the
  task that started it, with Django's database hygiene around it (old connections closed
  before and after, as between two requests: between two calls that follow each other in a
  worker, once), and where ``async_to_sync`` finds the loop (asgiref's thread-local, as
  ``sync_to_async`` sets it, and left set from one call to the next of the same loop);
- the loop queues the calls that became ready in one turn and wakes one worker after that
  turn; a worker takes calls one at a time, so the calls of many consumers run one after
  another in one thread. Handlers of one consumer never run concurrently: its pump waits for
  a call's end before the next (base.py);
- server events' calls (a client's frame: ``run_hook``, and a layer message's call that one
  waits behind, whether it waited when the call was queued or started waiting while the call
  was still queued: ``hurry``) are taken before layer messages' calls, though never twice in
  a row while those wait. When one ends and layer messages' calls wait, the worker lets the
  loop run until it has nothing ready (at most ``STALL`` s) before going on: the consumer
  hears of the end and hands over its next frame first. A room's sync sender so runs ahead of the
  deliveries its frames make, which then find several messages per channel (batches.py),
  where it would otherwise take one frame per round of deliveries;
- a call that blocks stalls the others for at most about ``STALL`` seconds: when the queue
  has not moved for that long, another worker is woken (up to the pool's size). A worker
  waiting in ``async_to_sync`` is one that blocks: most such waits (a ``group_send``) are
  over long before ``STALL``, and waking another worker for each would have two threads
  take the GIL from each other and from the loop;
- what a handler sends through its own consumer's sync API (``send``, ``accept``, ``close``,
  ``send_json``) is handed to the loop without waiting for it. The loop sends a call's
  messages in order: those handed over with the call's end from the consumer's own task,
  those of a call still running from a task of their own within ``STALL`` s (a handler that
  sends, then blocks, is heard). The call ends (its consumer takes the next message) only
  once its sends are done. A send that fails makes the handler's next send raise the error,
  or its end if there is none. More than ``MAX_AHEAD`` sends not yet done (plus one per
  message, for a batch of layer messages: batches.py) make the next send wait for them, so a
  slow client holds back a handler that sends in a loop, as before;
- the workers hand results and sends back through one wake-up of the loop per run of calls,
  not per message (``_Bridge``).
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import os
import threading
import weakref
from _thread import LockType
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any

from asgiref.sync import SyncToAsync, async_to_sync

from channelworks.db import close_old_connections

#: seconds a queued call may wait without any call being taken before another worker wakes
STALL = 0.002
#: sends of one call handed to the loop and not done, past which the next one waits
MAX_AHEAD = 16

_local = threading.local()


class _Waited:
    """The arguments of a send whose worker waits until it is done (``MAX_AHEAD``)."""

    __slots__ = ("args", "waiter")

    def __init__(self, args: tuple[Any, ...], waiter: LockType) -> None:
        self.args = args
        self.waiter = waiter


class _Call:
    """One sync call on its way through the pool, and the sends it handed to the loop.

    Await it for the call's result. Written by the worker: ``posted``, ``announced`` (set)
    and the sends it appends to ``queued``; by the loop: the rest. Sends that arrive while the
    call runs are started in a task at the end of the burst that brought them; sends that
    arrive with the call's end are run by the task awaiting the call (the consumer's own),
    which saves a task per message.

    ``queued`` holds each send as two entries, its coroutine function and its arguments (a
    ``_Waited`` if the worker waits for it), appended together in one ``extend`` (atomic
    under the GIL) and taken in pairs: no object per send that lives until it is sent (a
    room's burst queues thousands, and the garbage collector would visit each one). The
    worker tells the loop of new sends with one inbox entry per run of them
    (``announced``), not one per send.
    """

    __slots__ = (
        "ahead",
        "announced",
        "args",
        "bridge",
        "consumer",
        "context",
        "ended",
        "failed",
        "failed_at",
        "function",
        "future",
        "kwargs",
        "posted",
        "queued",
        "sender",
        "sent",
        "unwrap",
        "urgent",
    )

    def __init__(
        self,
        bridge: _Bridge,
        future: asyncio.Future[Any],
        consumer: object,
        function: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        unwrap: bool = False,
    ) -> None:
        self.bridge = bridge
        self.unwrap = unwrap  # an awaitable result is awaited too (a wrapper of an async def)
        self.future = future
        self.consumer = consumer
        self.function = function
        self.args = args
        self.kwargs = kwargs
        self.context = contextvars.copy_context()
        self.ahead = MAX_AHEAD  # sends not done past which the next one waits
        self.posted = 0  # sends handed to the loop (worker)
        self.sent = 0  # of those, done (loop)
        self.failed: BaseException | None = None  # the first send that failed
        self.failed_at = 0  # its number, counting from 0 in the order they were handed over
        #: sends not started yet: function, arguments, function, arguments... (made by the
        #: worker on its first send)
        self.queued: deque[Any] | None = None
        self.announced = False  # an inbox entry tells the loop of sends in ``queued``
        self.sender = False  # a task runs the queued sends
        self.ended: tuple[Any, BaseException | None] | None = None  # the call's outcome
        self.urgent = False  # queued in ``_Pool.first``

    def __await__(self) -> Generator[Any, None, Any]:
        try:
            result = yield from self.future.__await__()
        except asyncio.CancelledError:
            raise
        except BaseException:
            if self.queued:  # sent before the handler raised: they go first, as they did
                yield from self._send_queued().__await__()
            raise
        if self.queued:  # handed over with the call's end: sent from this task
            yield from _send_queued(self).__await__()
            if self.failed is not None:  # the handler would have stopped at the failed send
                raise self.failed
        if self.unwrap and result is not None and inspect.isawaitable(result):
            result = yield from _awaited(result).__await__()
        return result

    async def _send_queued(self) -> None:
        await _send_queued(self)
        if self.failed is not None:  # the handler would have stopped at the failed send
            raise self.failed

    # -- in the worker -------------------------------------------------------------------------

    def run(self, fresh: bool) -> None:
        """Run the call. ``fresh``: the first of a run of calls in this worker; the next ones
        follow the close after the previous call, which already did what a close before
        would do (nothing ran in this thread in between)."""
        result: Any = None
        error: BaseException | None = None
        try:
            if fresh:
                close_old_connections()
            try:
                result = self.context.run(self.function, *self.args, **self.kwargs)
            finally:
                close_old_connections()
        except BaseException as exc:  # handed to the awaiting task, as an await would
            error = exc
        self.bridge.inbox.append((self._ended, result, error))  # put, inlined

    def post(
        self, function: Callable[..., Coroutine[Any, Any, Any]], args: tuple[Any, ...]
    ) -> None:
        """Hand ``function(consumer, *args)`` to the loop, after this call's earlier sends."""
        if self.failed is not None:
            raise self.failed
        waiter = None
        if self.posted - self.sent >= self.ahead:
            waiter = threading.Lock()
            waiter.acquire()
        self.posted += 1
        self.hand_over(function, args if waiter is None else _Waited(args, waiter))
        if waiter is not None:
            if not self.bridge.flush():
                raise RuntimeError("the event loop of this consumer is closed")
            waiter.acquire()
            if self.failed is not None:
                raise self.failed

    def hand_over(self, function: Callable[..., Coroutine[Any, Any, Any]], args: object) -> None:
        """Queue a send for the loop (the worker's side of ``queued``: see the class)."""
        queued = self.queued
        if queued is None:
            queued = self.queued = deque()
        queued.extend((function, args))  # one step: the loop never sees half a send
        if not self.announced:  # after the extend: the loop clears it before it looks
            self.announced = True
            self.bridge.inbox.append((_announced, self))

    # -- on the loop ---------------------------------------------------------------------------

    def _announced(self) -> None:
        """The worker queued sends: they start at the end of this burst (``_start``)."""
        self.announced = False
        if not self.sender:
            self.bridge.starting.append(self)

    def _start(self) -> None:
        """End of a burst: sends of a call that still runs (or that nobody awaits any more)
        go now, in a task of their own (a task, not a step by hand: a server's send may need
        one, for ``asyncio.timeout``). Those of a call that ended go from the task awaiting
        it."""
        if not self.queued or self.sender:
            return
        if self.ended is None or self.future.cancelled():
            self.sender = True
            asyncio.Task(self._sender())

    async def _sender(self) -> None:
        await _send_queued(self)
        self.sender = False
        if self.ended is not None:
            self._finish(*self.ended)

    def _done(self, waiter: threading.Lock | None) -> None:
        self.sent += 1
        if waiter is not None:
            waiter.release()

    def _ended(self, result: Any, error: BaseException | None) -> None:
        self.bridge.outstanding -= 1
        self.ended = (result, error)
        if self.sender:
            return
        future = self.future  # _finish, inlined for the common case: no error
        if error is None and self.failed is None and not future.done():
            future.set_result(result)
        else:
            self._finish(result, error)

    def _finish(self, result: Any, error: BaseException | None) -> None:
        future = self.future
        if future.done():  # the task awaiting it was cancelled
            return
        error = self.failed or error
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)


#: turns of the loop a worker waits for at most after a server event's call (``_when_idle``)
IDLE_HOPS = 8


def _when_idle(callback: Callable[[], Any], hops: int) -> None:
    """On the loop: ``callback()`` once the loop has no other callback ready (asyncio's own
    loop tells), or after ``hops`` turns."""
    loop = asyncio.get_running_loop()
    if hops and getattr(loop, "_ready", None):
        loop.call_soon(_when_idle, callback, hops - 1)
    else:
        callback()


async def _awaited(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


async def _send_queued(call: _Call) -> None:
    """Run the sends ``call`` handed over, in order, until none is left; the first error is
    kept in ``call.failed`` and the sends after it are dropped (the handler would have
    stopped at it)."""
    queued, consumer = call.queued, call.consumer
    while queued:
        function = queued.popleft()
        args = queued.popleft()
        waiter = None
        if args.__class__ is _Waited:
            waiter = args.waiter
            args = args.args
        if call.failed is None:
            try:
                await function(consumer, *args)
            except BaseException as exc:
                call.failed, call.failed_at = exc, call.sent
        call._done(waiter)


class _Bridge:
    """One event loop's inbox for what the workers hand back.

    Workers add to it without waking the loop; the loop drains it when a worker flushes (at
    the end of its run of calls, before a send waits), when a
    worker starts waiting for the loop (``thread_waits``), and every ``STALL`` seconds while
    calls of this loop are out (what a handler sends before it blocks goes out then).
    """

    __slots__ = (
        "__weakref__",
        "inbox",
        "kicking",
        "loop",
        "outstanding",
        "scheduled",
        "starting",
        "watching",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # Weak: ``_bridges`` is keyed by the loop; a strong reference would keep it alive.
        self.loop = weakref.ref(loop)
        self.inbox: deque[tuple[Any, ...]] = deque()
        self.scheduled = False
        self.watching = False  # a check is armed on this loop (``_Pool._check``)
        self.outstanding = 0  # calls submitted and not ended
        self.kicking = False  # a wake-up of the pool is scheduled on this loop
        self.starting: list[_Call] = []  # calls that handed sends over in this burst

    def put(self, function: Callable[..., None], *args: Any) -> None:
        """Run ``function(*args)`` on the loop at its next drain (any thread). The inbox
        holds ``(function, *args)``: one object per entry."""
        self.inbox.append((function, *args))

    def flush(self) -> bool:
        """Have the loop drain soon (any thread); false if the loop is gone."""
        if self.scheduled or not self.inbox:
            return True
        self.scheduled = True
        loop = self.loop()
        try:
            if loop is None:
                raise RuntimeError("loop collected")
            loop.call_soon_threadsafe(self.drain)
        except RuntimeError:  # closed: nothing will run there any more
            self.inbox.clear()
            return False
        return True

    def drain(self) -> None:
        self.scheduled = False
        inbox = self.inbox
        while inbox:
            entry = inbox.popleft()
            entry[0](*entry[1:])
        if self.starting:
            starting, self.starting = self.starting, []
            for call in starting:
                # _start's first test, inlined: a call that ended here sends from its task
                if call.ended is None or call.future.cancelled():
                    call._start()


#: ``_Call._announced`` itself: the inbox entry names it with its call, no bound method
_announced = _Call._announced

_bridges: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Bridge] = (
    weakref.WeakKeyDictionary()
)


class _Pool:
    """The worker threads and their shared queue of calls."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.queue: deque[_Call] = deque()
        #: calls for server events (a client's frame), taken before ``queue``'s
        self.first: deque[_Call] = deque()
        self.lock = threading.Lock()
        self.parked: list[threading.Lock] = []  # one held lock per parked worker
        self.running = 0  # workers not parked
        self.threads = 0
        self.taken = 0  # calls taken so far: has the queue moved?

    def submit(self, call: _Call, loop: asyncio.AbstractEventLoop, first: bool) -> None:
        bridge = call.bridge
        bridge.outstanding += 1
        if first:
            call.urgent = True
            self.first.append(call)
        else:
            self.queue.append(call)
        if not bridge.kicking:  # the calls of this turn of the loop go in one wake-up
            bridge.kicking = True
            loop.call_soon(self._kick, bridge)
        if not bridge.watching:
            bridge.watching = True
            loop.call_later(STALL, self._check, bridge, self.taken)

    def _kick(self, bridge: _Bridge) -> None:
        """After the loop's turn that queued calls: wake a worker if none is taking them."""
        bridge.kicking = False
        with self.lock:
            if (self.queue or self.first) and not self.running:
                self._wake()

    def thread_waits(self, task: asyncio.Future[Any]) -> None:
        bridge = _bridges.get(task.get_loop())
        if bridge is not None and bridge.inbox:
            bridge.drain()  # what the waiting worker handed over so far

    def _check(self, bridge: _Bridge, taken: int) -> None:
        """Every ``STALL`` s on a loop with calls out: drain what the workers handed over,
        and wake another worker if the queue has not moved."""
        if bridge.inbox:
            bridge.drain()
        with self.lock:
            if (self.queue or self.first) and self.taken == taken:
                self._wake()
        if bridge.outstanding > 0:
            asyncio.get_running_loop().call_later(STALL, self._check, bridge, self.taken)
        else:
            bridge.watching = False

    def _wake(self) -> None:
        """Wake a parked worker or start one, if the pool has room (holding ``lock``)."""
        if self.parked:
            self.parked.pop().release()
        elif self.threads < self.size:
            self.threads += 1
            park = threading.Lock()
            park.acquire()
            thread = threading.Thread(
                target=self._work,
                args=(park,),
                name=f"channelworks-sync_{self.threads - 1}",
                daemon=True,
            )
            thread.start()
        else:
            return
        self.running += 1

    def _work(self, park: threading.Lock) -> None:
        queue, first, local, pid = self.queue, self.first, SyncToAsync.threadlocal, os.getpid()
        local.task_context = None
        touched: list[_Bridge] = []  # bridges handed something since the last flush
        fresh = True  # no call ran in this thread since it was woken
        current: _Bridge | None = None  # the bridge whose loop the thread-locals name
        urgent = False  # the last call taken was from ``first``
        while True:
            try:
                # ``first`` before ``queue``, but not twice in a row while ``queue`` waits
                urgent = bool(first) and not (urgent and queue)
                call = first.popleft() if urgent else queue.popleft()
            except IndexError:
                for bridge in touched:
                    bridge.flush()
                touched.clear()
                with self.lock:
                    if queue or first:
                        current = None  # to be touched again
                        continue
                    self.running -= 1
                    self.parked.append(park)
                # Parked, the thread holds no loop and no call (they could not be collected).
                current = _local.call = local.main_event_loop = None
                park.acquire()  # until _wake releases it
                fresh = True
                continue
            self.taken += 1
            bridge = call.bridge
            if bridge is not current:  # calls of one loop follow each other: set once
                loop = bridge.loop()
                if loop is None:
                    continue
                current = bridge
                if bridge not in touched:
                    touched.append(bridge)
                # What async_to_sync looks for in a thread without a loop (as sync_to_async
                # sets).
                local.main_event_loop, local.main_event_loop_pid = loop, pid
                del loop
            _local.call = call
            call.run(fresh)
            fresh = False
            del call
            if urgent and queue and not first:
                # A server event's call ended, other calls wait: its consumer hears of it now
                # and may hand over its next frame before those run (a room's sender runs
                # ahead of its deliveries, which then come in batches).
                _let_loop_run(bridge)


def _let_loop_run(bridge: _Bridge) -> None:
    """In a worker: give ``bridge``'s loop the GIL until it has nothing ready, or ``STALL``
    s, handing it what the worker handed over so far."""
    idle = threading.Lock()
    idle.acquire()
    bridge.put(_when_idle, idle.release, IDLE_HOPS)
    if bridge.flush():
        idle.acquire(timeout=STALL)


def let_loop_run() -> None:
    """In a call of the pool: let the loop run until it has nothing ready, or ``STALL`` s."""
    call: _Call | None = getattr(_local, "call", None)
    if call is not None:
        _let_loop_run(call.bridge)


_pool: _Pool | None = None


def _no_loop() -> None:
    return None


#: the loop of the last ``run_sync`` (weakly) and its bridge: the common case, one loop
_last: tuple[Callable[[], asyncio.AbstractEventLoop | None], _Bridge | None] = (_no_loop, None)


def _the_pool() -> _Pool:
    """The process's pool; a new one in a child process (a fork keeps no thread)."""
    global _pool
    if _pool is None:
        _pool = _Pool(int(os.environ.get("CHANNELWORKS_SYNC_THREADS", "32")))
    return _pool


def _forget_pool() -> None:
    """In a forked child: the parent's pool has no thread here (``os.getpid()`` per call to
    find that out would be a system call per message)."""
    global _pool
    _pool = None


os.register_at_fork(after_in_child=_forget_pool)


def run_sync(
    consumer: object, function: Callable[..., Any], *args: Any, **kwargs: Any
) -> Awaitable[Any]:
    """Run ``function(*args, **kwargs)`` in the pool; await the result for its result.

    ``consumer`` is the consumer the call handles a message for (``None``: none): its sync API
    hands sends to the loop without waiting while the call runs. Awaiting the future and
    being cancelled leaves the call running to its end, as ``sync_to_async`` does.
    """
    return _submit(consumer, function, args, kwargs, False)


def run_hook(
    consumer: object, function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> _Call:
    """``run_sync`` for a consumer's hook (``connect``, ``receive``...), a server event's
    call: taken before the layer messages' calls (``_Pool.first``)."""
    return _submit(consumer, function, args, kwargs, False, True)


def run_sync_handler(
    consumer: object, function: Callable[[Any, Any], Any], message: Any, first: bool = False
) -> _Call:
    """``function(consumer, message)`` in the pool, as ``run_sync``; if it returns an
    awaitable (a sync-looking wrapper of an ``async def``), awaiting the call awaits that too.

    Returns the awaitable call itself, no coroutine around it: a layer message to a sync
    consumer comes through here, once per delivery.
    """
    return _submit(consumer, function, (consumer, message), {}, True, first)


def _submit(
    consumer: object,
    function: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    unwrap: bool,
    first: bool = False,
) -> _Call:
    global _last
    loop = asyncio.get_running_loop()
    last_loop, bridge = _last
    if bridge is None or last_loop() is not loop:  # a weak reference to it: no leak
        bridge = _bridges.get(loop)
        if bridge is None:
            bridge = _bridges[loop] = _Bridge(loop)
        _last = (weakref.ref(loop), bridge)
    call = _Call(bridge, loop.create_future(), consumer, function, args, kwargs, unwrap)
    (_pool or _the_pool()).submit(call, loop, first)
    return call


def hurry(call: _Call) -> None:
    """On the loop: a server event waits behind ``call`` (its consumer's layer message): if
    it is still queued with the layer messages' calls, it is taken first (as it would have
    been, had the event waited when it was submitted)."""
    pool = _pool
    if pool is None or call.urgent or call.future.done():
        return
    with pool.lock:  # a worker parks only under it, after finding both queues empty
        try:
            pool.queue.remove(call)  # atomic: compares by identity, no Python code runs
        except ValueError:  # taken by a worker meanwhile
            return
        call.urgent = True
        pool.first.append(call)


def thread_waits(task: asyncio.Future[Any]) -> None:
    """On the loop: a thread waits for ``task`` (its ``async_to_sync``) until it ends.

    What a worker handed over before it waits goes out now (it would wait for the end of its
    run of calls). The worker is not replaced: if the wait lasts, ``STALL`` does that.
    """
    if _pool is not None:
        _pool.thread_waits(task)


def run_batch(
    consumer: object, batch: Callable[[], None], messages: int, first: bool = False
) -> _Call:
    """``batch()`` in the pool: the handlers of ``messages`` layer messages of ``consumer``
    (batches.py). A send per message more may be not done before the next send waits
    (``MAX_AHEAD``): a room's batch, one send per message, does not wait for the loop."""
    call = _submit(consumer, batch, (), {}, False, first)
    call.ahead = MAX_AHEAD + messages
    return call


def current_call() -> _Call | None:
    """In a worker: the call it runs (``None`` elsewhere)."""
    call: _Call | None = getattr(_local, "call", None)
    return call


def send_failed() -> bool:
    """In a worker: whether a send that the running call handed to the loop failed (its
    handler's next send, or its end, raises the error)."""
    call: _Call | None = getattr(_local, "call", None)
    return call is not None and call.failed is not None


def call_async(
    consumer: object, function: Callable[..., Coroutine[Any, Any, Any]], *args: Any
) -> None:
    """``async_to_sync(function)(consumer, *args)`` for a consumer's sync API.

    From a call of this pool handling a message for ``consumer``, the coroutine is handed to
    the loop and this returns at once (the rules above); from anywhere else, it waits, as
    ``async_to_sync`` does.
    """
    call: _Call | None = getattr(_local, "call", None)
    if call is None or call.consumer is not consumer:
        async_to_sync(function)(consumer, *args)
    elif call.failed is None and call.posted - call.sent < call.ahead:
        call.posted += 1  # post and hand_over, inlined for the common case: once per send
        queued = call.queued
        if queued is None:
            queued = call.queued = deque()
        queued.extend((function, args))
        if not call.announced:
            call.announced = True
            call.bridge.inbox.append((_announced, call))
    else:
        call.post(function, args)


__all__ = [
    "MAX_AHEAD",
    "STALL",
    "call_async",
    "hurry",
    "let_loop_run",
    "run_batch",
    "run_sync",
    "run_sync_handler",
    "send_failed",
    "thread_waits",
]
