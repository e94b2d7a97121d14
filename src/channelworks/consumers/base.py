"""The consumer runtime: one instance per scope, messages dispatched by ``type`` to handlers.

Rules of this file (which methods are handlers, and how they run: ``handlers.py``):
- handlers of one consumer never run concurrently: server events and channel layer messages
  take turns;
- a channel layer message never triggers a protocol event handler (``websocket.receive``...):
  those come from the server only. A layer message nobody handles is logged at ERROR and
  dropped; the connection lives on. A server event nobody handles is an error;
- group memberships taken with ``join_groups`` are always released when the consumer ends,
  however it ends;
- layer messages for sync handlers that wait in the consumer's channel are handled in one
  worker call, as they would be one call each (batches.py);
- the event loop gets a turn before a message is handled, so tasks a handler started run
  (up to their first wait) before the next message of the same consumer, as in Channels. The
  turn costs a task step, so it is given only when it can matter: when a task was created
  on the loop since the last message was handed over (turns.py).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import operator
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from time import perf_counter
from typing import Any, ClassVar, Protocol, cast

from asgiref.sync import markcoroutinefunction

from channelworks import DEFAULT_CHANNEL_LAYER
from channelworks.consumers.batches import Batch, Offered, Offers, gather, offer
from channelworks.consumers.handlers import (
    Mode,
    Resolution,
    await_result,
    framework_class,
    is_async_hook,
    lookup,
    run_handler,
)
from channelworks.consumers.reader import LayerReader
from channelworks.consumers.sync_pool import (
    _Call,
    call_async,
    hurry,
    run_batch,
    run_hook,
    run_sync_handler,
)
from channelworks.consumers.turns import TaskCount
from channelworks.exceptions import StopConsumer, UnhandledMessageType
from channelworks.layers.base import BaseChannelLayer
from channelworks.layers.registry import get_channel_layer
from channelworks.limits.guard import ConnectionGuard
from channelworks.ops.connections import DURATION_BUCKETS, Connection, bucket_of, observe
from channelworks.types import Asgi3Callable, Message, Receive, Scope, Send

logger = logging.getLogger("channelworks.consumers")


class _Handoff(Protocol):
    """The layer reader, as ``_pump`` sees it: it holds the first message, and the messages
    taken for a batch and not handled yet (reader.py)."""

    first: Any
    pending: deque[Message] | None


class ConsumerApp(Protocol):
    """What ``as_asgi()`` returns: an ASGI application that remembers its consumer class.

    ``__call__`` is typed loosely so that django-stubs accept it as a ``path()`` view.
    """

    consumer_class: type[AsyncConsumer]
    consumer_initkwargs: dict[str, Any]

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any: ...


@framework_class()
class AsyncConsumer:
    """Base of every consumer; its handlers are ``async def``.

    Instantiate per connection through ``as_asgi()``. Set ``channel_layer_alias`` to read from
    another layer than ``"default"``; ``channel_layer`` is ``None`` when none is configured.
    """

    channel_layer_alias: ClassVar[str] = DEFAULT_CHANNEL_LAYER

    scope: Scope
    base_send: Send
    channel_layer: BaseChannelLayer | None
    channel_name: str | None
    #: whether plain ``def`` handlers and hooks are allowed (run in a worker thread)
    sync_handlers: ClassVar[bool] = False
    _handlers: ClassVar[dict[object, Resolution]] = {}
    _layer_handlers: ClassVar[dict[str, dict[object, Resolution]]] = {}
    #: groups joined through ``join_groups``, left when the consumer ends
    groups_joined: tuple[str, ...] = ()
    _reader_failure: BaseException | None = None
    #: the connection's limits (WebSocket consumers), released when the consumer ends
    _guard: ConnectionGuard | None = None
    #: whether operators see this consumer's connections (channelworks.ops): ``False`` keeps
    #: them out of metrics, the live view and the connection logs (a health check's socket)
    observed: ClassVar[bool] = True
    #: the connection as operators see it (channelworks.ops), if observation is on
    _conn: Connection | None = None
    #: the turn of the consumer's two message pumps, while it runs
    _turn: _Turn | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._handlers = {}
        cls._layer_handlers = {}

    def __init__(self, **kwargs: Any) -> None:
        for key, value in kwargs.items():
            setattr(self, key, value)

    @classmethod
    def as_asgi(cls, **initkwargs: Any) -> ConsumerApp:
        """An ASGI application that runs a new instance per scope, made with ``initkwargs``.

        The keywords go to the class's ``__init__``, as in Channels. If the class (or a base of
        it outside channelworks) defines an ``__init__``, that ``__init__`` takes them and they
        are checked against its signature here. Otherwise they set attributes on the
        instance: only existing class attributes that are not methods may be set.
        """
        init = _own_init(cls)
        if init is not None:
            try:
                inspect.signature(init).bind(None, **initkwargs)
            except TypeError as exc:
                raise TypeError(f"{cls.__qualname__}.as_asgi(): {exc}") from None
        for key in initkwargs if init is None else ():
            current = inspect.getattr_static(cls, key, _MISSING)
            if current is _MISSING:
                raise TypeError(
                    f"{cls.__qualname__}.as_asgi() got {key!r}, which is not an attribute of "
                    f"the class; declare it on the class first"
                )
            if inspect.isroutine(current) or isinstance(
                current, (property, staticmethod, classmethod)
            ):
                raise TypeError(
                    f"{cls.__qualname__}.as_asgi() cannot replace method or property {key!r}"
                )
            if key == "sync_handlers":
                raise TypeError("sync_handlers is fixed by the consumer class")

        app = _AsgiApp(cls, initkwargs)
        functools.update_wrapper(app, cls, updated=())
        markcoroutinefunction(app)
        return cast(ConsumerApp, app)

    # -- the runtime ---------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" and not hasattr(type(self), "lifespan_startup"):
            # A consumer served bare (no ProtocolTypeRouter) gets the server's lifespan scope:
            # raise before sending anything, so that the server (uvicorn's "auto" mode) says
            # lifespan is unsupported and goes on, as it does for Channels' consumers.
            raise ValueError(
                f"{type(self).__qualname__} does not handle the 'lifespan' scope: serve it "
                "behind ProtocolTypeRouter, or turn the server's lifespan off"
            )
        self.start_connection()
        self.scope = scope
        self.base_send = send
        layer = self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.channel_name = None
        # Server events are pumped by this task, layer messages by a reader task; the turn
        # makes their handlers take turns. The reader hands its failure (or StopConsumer) over
        # by cancelling this task, which owns the consumer's lifetime. Every frame here lives
        # as long as the connection: keep the nesting shallow.
        turn = self._turn = _Turn()
        reader = None
        try:
            if layer is not None:
                name = self.channel_name = await layer.new_channel()
            self._conn = observe(self)  # before the reader starts: it logs with the id
            if layer is not None:
                reader = LayerReader(self, layer, name, turn, asyncio.current_task())
            await self._pump(receive, turn)
        except StopConsumer:
            pass
        except asyncio.CancelledError:
            failure = self._reader_failure
            task = asyncio.current_task()
            if failure is None or task is None or task.uncancel() > 0:
                raise
            if not isinstance(failure, StopConsumer):
                raise failure from None
        finally:
            if reader is not None:
                await reader.stop()
            if self._guard is not None:
                self._guard.release()
            if self.groups_joined:
                await self.leave_groups()
            if self._conn is not None:
                self._conn.ended()

    def start_connection(self) -> None:
        """Reset the per-connection state; runs first thing for each scope.

        One instance may serve several connections one after the other (Channels' tests pass
        an instance, not ``as_asgi()``, to several communicators); a subclass that keeps state
        per connection resets it here (and calls ``super()``).
        """
        self._reader_failure = None
        self._guard = None
        self._conn = None

    async def _pump(
        self,
        source: Callable[..., Awaitable[Message]],
        turn: _Turn,
        owner: asyncio.Task[Any] | None = None,
        poll: Callable[[str], Message | None] | None = None,
        channel: str = "",
        handoff: _Handoff | None = None,
    ) -> None:
        """Take messages from ``source`` and handle each in turn, until ``StopConsumer``.

        As the layer reader (reader.py), ``source`` and ``poll`` take the ``channel``; ``poll``
        returns a message already waiting, sparing a coroutine per message while a burst is
        drained; ``handoff.first`` is the message the reader was started with (it stays the
        reader's until taken here), and ``handoff.pending`` holds messages taken from the
        channel and not handled yet (batches.py: waiting messages for sync handlers go to the
        pool in one call).

        This loop runs once per message of every connection: it inlines what ``dispatch``
        does unless a subclass overrides ``dispatch``. With an ``owner``, this is the layer
        reader: protocol events are refused, unhandled types dropped with a log, and an ending
        is reported to the owner task instead of raised.
        """
        cls = type(self)
        overridden = cls.dispatch is not AsyncConsumer.dispatch
        awaited = Mode.AWAIT  # a local: an Enum member lookup costs more than the rest
        threaded = Mode.THREAD
        reader = handoff
        pending = None if reader is None else reader.pending
        if handoff is not None and handoff.first is None:
            handoff = None
        if owner is None:
            protocol = None
            cache = cls._handlers
        else:  # the layer's own cache never holds a protocol event type
            protocol = f"{self.scope['type']}_"
            cache = cls._layer_handlers.setdefault(protocol, {})
        yield_turn = asyncio.sleep  # a local: looked up once per message otherwise
        loop = asyncio.get_running_loop()
        tasks = TaskCount.of(loop)
        # TaskCount.reliable, inlined: whether the loop's task factory is still the count's
        # (asyncio's own loop: its attribute, read without a Python call)
        counting = tasks.factory
        task_factory: Callable[[asyncio.AbstractEventLoop], object] = type(loop).get_task_factory
        if task_factory is asyncio.BaseEventLoop.get_task_factory:
            task_factory = _task_factory_of
        seen = -1  # tasks the loop had created when the last message was handed over
        offered: Offered | None = None  # this message, offered to the hook's call (batches.py)
        observed = self._conn  # times handlers for operators (channelworks.ops), if on
        timings = observed.timings if observed is not None else {}
        quick = DURATION_BUCKETS[0]
        started, kind = 0.0, None
        try:
            while True:
                if poll is None:
                    message = await source()
                elif handoff is not None:  # the reader's first message, taken once
                    message, handoff.first, handoff = handoff.first, None, None
                elif pending:
                    message = pending.popleft()
                else:
                    waiting = poll(channel)
                    message = await source(channel) if waiting is None else waiting
                # The loop's turn before the message if tasks were started since the last one
                # was handed over (turns.py), so that they run first.
                if seen != tasks.created or task_factory(loop) is not counting:
                    await yield_turn(0)
                seen = tasks.created
                if turn.busy:
                    if owner is None:
                        if turn.call is not None:  # the reader's: this event waits behind it
                            hurry(turn.call)
                    elif turn.offers is not None and poll is not None:  # a sync receive runs
                        offered = offer(turn.offers, cls, cache, self, message)
                    try:
                        await turn.wait()
                    except BaseException:
                        # The consumer ends: a message nobody handled goes back with those
                        # taken for a batch (``LayerReader.stop``), unless the hook's call
                        # took the offer (it runs, or ran, there).
                        if reader is not None and (offered is None or offered.withdraw()):
                            if pending is None:
                                pending = reader.pending = deque()
                            pending.appendleft(message)
                        raise
                else:
                    turn.busy = True
                if observed is not None:
                    started = perf_counter()
                try:
                    kind = message.get("type")
                    if offered is not None:
                        taken, offered = offered, None
                        if await taken.settled():  # it ran in the hook's call
                            if observed is not None:
                                started = perf_counter() - taken.elapsed
                            if taken.error is not None:
                                raise taken.error
                            if taken.result is not None:
                                await taken.result
                            continue
                    entry = None
                    if not overridden:
                        try:
                            entry = cache[kind]
                            if getattr(cls, entry[0], None) is not entry[1]:
                                entry = None  # patched, or a descriptor: look again
                        except (KeyError, TypeError):  # new type, or unhashable
                            pass
                    if entry is None:
                        if protocol is not None and _is_protocol_event(kind, protocol):
                            raise UnhandledMessageType(
                                kind, cls.__qualname__, "protocol events come from the server only"
                            )
                        if overridden:
                            await self.dispatch(message)
                            continue
                        entry = lookup(cls, cache, kind)
                    if entry[3] is awaited:
                        await entry[2](self, message)
                    elif entry[3] is not threaded:
                        await run_handler(entry[2], entry[3], self, message)
                    elif reader is None or poll is None:  # the server's: taken first
                        await run_sync_handler(self, entry[2], message, True)
                    else:  # a sync handler's: those waiting after it go too (batches.py)
                        # taken first too if a server event waits for its turn
                        first = turn.waiting is not None
                        waiting = pending.popleft() if pending else poll(channel)
                        if waiting is None:
                            turn.call = run_sync_handler(self, entry[2], message, first)
                            await turn.call
                            turn.call = None  # (left set if it raised: hurry skips it)
                            continue
                        if pending is None:  # made when first needed: see LayerReader
                            pending = reader.pending = deque()
                        batched = gather(message, waiting, pending, poll, channel)
                        if batched is None:
                            turn.call = run_sync_handler(self, entry[2], message, first)
                            await turn.call
                            turn.call = None
                            continue
                        batch = Batch(self, entry[2], batched, tasks, turn, observed is not None)
                        try:
                            turn.call = run_batch(self, batch, len(batched), first)
                            await turn.call
                        finally:
                            turn.call = None
                            batch.rest(pending)
                            message = batch.last or message
                            kind = message.get("type")
                            if observed is not None:  # the last one's time is taken below
                                started = perf_counter() - batch.report(observed)
                        if batch.error is not None:
                            raise batch.error
                        if batch.result is not None:
                            await batch.result
                except StopConsumer:
                    raise
                except UnhandledMessageType as exc:
                    if protocol is None:
                        await self.handle_exception(exc, message)
                    else:
                        logger.error("Dropped a channel layer message: %s", exc)
                except Exception as exc:
                    if observed is not None:
                        observed.failed(kind, exc)
                    await self.handle_exception(exc, message)
                finally:
                    if turn.waiting is None:  # _Turn.release, inlined: nobody waits
                        turn.busy = False
                    else:
                        turn.release()
                    if observed is not None:  # Connection.handled, inlined
                        elapsed = perf_counter() - started
                        try:
                            timing = timings[kind]
                        except (KeyError, TypeError):  # a new type, or unhashable
                            timing = observed.timing_of(kind)
                        if elapsed < quick:  # most handlers: the first bucket
                            timing.counts[0] += 1
                        else:
                            timing.counts[bucket_of(DURATION_BUCKETS, elapsed)] += 1
                        timing.sum += elapsed
        except BaseException as exc:
            if owner is None or isinstance(exc, asyncio.CancelledError):
                raise
            self._reader_failure = exc
            owner.cancel()

    async def dispatch(self, message: Message) -> None:
        """Run the handler for ``message["type"]``: awaited if async, in a thread if not.

        Override to wrap every message (logging, metrics); call ``super().dispatch()``.
        """
        cls = type(self)
        _, _, call, mode = lookup(cls, cls._handlers, message.get("type"))
        await run_handler(call, mode, self, message)

    async def handle_exception(self, exc: Exception, message: Message) -> None:
        """Called when a handler raises; the default re-raises, ending the consumer."""
        raise exc

    async def call_hook(self, hook: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call a user hook (``connect``, ``receive``...): awaited if async, else in a thread."""
        if is_async_hook(hook):
            return await hook(*args, **kwargs)
        if not type(self).sync_handlers:
            return await await_result(hook(*args, **kwargs), hook.__qualname__)
        result = await run_hook(self, hook, args, kwargs)
        return await result if inspect.isawaitable(result) else result

    async def _call_receive(self, hook: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
        """``call_hook(hook, **kwargs)`` for a frame's ``receive`` hook (``call_hook`` not
        overridden): a sync hook's call also handles the layer messages for sync handlers
        that the reader offers it while it runs (batches.Offers)."""
        turn = self._turn
        if turn is None or is_async_hook(hook) or not type(self).sync_handlers:
            return await self.call_hook(hook, **kwargs)
        offers = turn.offers = Offers(hook, kwargs, TaskCount.of(asyncio.get_running_loop()))
        call = run_hook(self, offers, (), {})
        try:
            result = await call
        except Exception as exc:
            if not offers.failure(call, exc):
                raise
            return None  # the hook returned: a send of the offered handler failed (its error)
        finally:
            turn.offers = None
        return await result if inspect.isawaitable(result) else result

    # -- sending and groups --------------------------------------------------------------------

    async def send(self, message: Message) -> None:
        """Send an ASGI message to the server (the client)."""
        await self.base_send(message)

    async def join_groups(self, groups: Iterable[str]) -> None:
        """Add this consumer's channel to ``groups``; they are left when the consumer ends."""
        layer, name = self.channel_layer, self.channel_name
        if layer is None or name is None:
            raise ValueError(f"{type(self).__qualname__} has groups but no channel layer")
        for group in groups:
            await layer.group_add(group, name)
            self.groups_joined = (*self.groups_joined, group)

    async def leave_groups(self) -> None:
        """Leave every group joined with ``join_groups``."""
        layer, name = self.channel_layer, self.channel_name
        joined, self.groups_joined = self.groups_joined, ()
        if getattr(self, "_presence_tracked", False):  # consumers/presence.py
            await self._untrack_presence()  # type: ignore[attr-defined]
        if layer is not None and name is not None:
            for group in joined:
                await layer.group_discard(group, name)


@framework_class()
class SyncConsumer(AsyncConsumer):
    """A consumer whose handlers are plain ``def``: each runs in a worker thread.

    Handlers may block (ORM calls, file I/O). From the consumer's own handler ``self.send``
    hands the message to the event loop and returns; the handler's turn ends once it is sent
    (sync_pool.py). From other threads it waits until the message is sent.
    """

    sync_handlers = True

    def send(self, message: Message) -> None:  # type: ignore[override]
        call_async(self, AsyncConsumer.send, message)


class _AsgiApp(Asgi3Callable):
    """What ``as_asgi()`` returns: makes the consumer and returns its ``__call__`` coroutine
    (an ``Asgi3Callable``: no frame of its own per connection)."""

    __slots__ = ("__dict__", "consumer_class", "consumer_initkwargs")

    def __init__(self, consumer_class: type[AsyncConsumer], initkwargs: dict[str, Any]) -> None:
        self.consumer_class = consumer_class
        self.consumer_initkwargs = initkwargs

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        return self.consumer_class(**self.consumer_initkwargs)(scope, receive, send)


def _own_init(cls: type) -> Callable[..., Any] | None:
    """The ``__init__`` a class gets from user code (itself or a base outside channelworks'
    consumers), or ``None`` if it gets channelworks' own (which sets attributes)."""
    for base in cls.__mro__:
        if "__init__" in vars(base):
            if base is object or base.__module__.startswith("channelworks.consumers."):
                return None
            init: Callable[..., Any] = vars(base)["__init__"]
            return init
    return None


def _is_protocol_event(kind: object, protocol: str) -> bool:
    """Whether ``kind`` would reach a handler of the scope's protocol (``websocket_...``)."""
    return isinstance(kind, str) and kind.replace(".", "_").startswith(protocol)


class _Turn:
    """Mutual exclusion between a consumer's two message pumps (server and layer).

    Unlike ``asyncio.Lock`` it creates no coroutine when free, which matters once per message.
    With two pumps at most one task waits. Hazard: a waiter cancelled just after being handed
    the turn must pass it on, or the other pump would wait forever; ``wait`` does that.
    """

    __slots__ = ("busy", "call", "offers", "waiting")

    def __init__(self) -> None:
        self.busy = False
        self.waiting: asyncio.Future[None] | None = None
        #: the sync pool call the layer reader awaits (for a layer message), if any: a server
        #: event that waits for the turn has it taken first (sync_pool.hurry)
        self.call: _Call | None = None
        #: the call of a frame's sync ``receive`` hook, while it runs: the layer reader
        #: offers it the message it waits with (batches.Offers)
        self.offers: Offers | None = None

    async def wait(self) -> None:
        """Wait until the turn is handed over; on return the caller holds it."""
        waiting = self.waiting = asyncio.get_running_loop().create_future()
        try:
            await waiting
        except asyncio.CancelledError:
            if waiting.done() and not waiting.cancelled():
                self.release()
            elif self.waiting is waiting:
                self.waiting = None
            raise

    def release(self) -> None:
        """Hand the turn to the waiting task, or free it."""
        waiting, self.waiting = self.waiting, None
        if waiting is not None and not waiting.done():
            waiting.set_result(None)  # still busy: the waiter owns it now
        else:
            self.busy = False


_MISSING = object()
#: ``BaseEventLoop.get_task_factory`` without its Python frame (it returns this attribute)
_task_factory_of = operator.attrgetter("_task_factory")

__all__ = ["AsyncConsumer", "ConsumerApp", "SyncConsumer"]
