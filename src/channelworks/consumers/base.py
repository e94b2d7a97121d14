"""The consumer runtime: one instance per scope, messages dispatched by ``type`` to handlers.

Rules of this file:
- a message of type ``a.b`` goes to the handler ``a_b``, and only to a handler: names the
  framework defines for other purposes (``send``, ``close``, ``connect``...) and private names
  are never reachable from a message, whatever its ``type``;
- a handler written ``async def`` is awaited on the event loop; a plain ``def`` handler runs in
  a worker thread, so a slow sync handler holds up only its own consumer;
- handlers of one consumer never run concurrently: ASGI events and channel layer messages take
  turns through one lock;
- group memberships taken with ``join_groups`` are always released when the consumer ends,
  however it ends.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Protocol, TypeVar, cast

from asgiref.sync import async_to_sync, sync_to_async

from channelworks import DEFAULT_CHANNEL_LAYER
from channelworks.exceptions import StopConsumer, UnhandledMessageType
from channelworks.layers.base import BaseChannelLayer
from channelworks.layers.registry import get_channel_layer
from channelworks.types import Message, Receive, Scope, Send

logger = logging.getLogger("channelworks.consumers")

C = TypeVar("C", bound="AsyncConsumer")
Handler = Callable[[Any, Message], Any]


class ConsumerApp(Protocol):
    """What ``as_asgi()`` returns: an ASGI application that remembers its consumer class.

    ``__call__`` is typed loosely so that django-stubs accept it as a ``path()`` view.
    """

    consumer_class: type[AsyncConsumer]
    consumer_initkwargs: dict[str, Any]

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any: ...


# Public names that framework classes define for a purpose other than handling a message type.
_NOT_HANDLERS: set[str] = set()


def framework_class(*handlers: str) -> Callable[[type[C]], type[C]]:
    """Mark a framework consumer class: its public names other than ``handlers`` are API."""

    def mark(cls: type[C]) -> type[C]:
        _NOT_HANDLERS.update(n for n in vars(cls) if not n.startswith("_") and n not in handlers)
        return cls

    return mark


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
    _handlers: ClassVar[dict[object, tuple[Handler, bool]]]
    #: groups joined through ``join_groups``, left when the consumer ends
    groups_joined: tuple[str, ...] = ()
    _reader_failure: BaseException | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._handlers = {}

    def __init__(self, **kwargs: Any) -> None:
        for key, value in kwargs.items():
            setattr(self, key, value)

    @classmethod
    def as_asgi(cls, **initkwargs: Any) -> ConsumerApp:
        """An ASGI application that runs a new instance per scope with ``initkwargs`` set.

        Only existing class attributes that are not methods may be set.
        """
        for key in initkwargs:
            current = getattr(cls, key, _MISSING)
            if current is _MISSING:
                raise TypeError(
                    f"{cls.__qualname__}.as_asgi() got {key!r}, which is not an attribute of "
                    f"the class; declare it on the class first"
                )
            if inspect.isfunction(current) or inspect.ismethod(current):
                raise TypeError(f"{cls.__qualname__}.as_asgi() cannot replace method {key!r}")

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            await cls(**initkwargs)(scope, receive, send)

        functools.update_wrapper(app, cls, updated=())
        consumer_app = cast(ConsumerApp, app)
        consumer_app.consumer_class = cls
        consumer_app.consumer_initkwargs = initkwargs
        return consumer_app

    # -- the runtime ---------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        self.base_send = send
        layer = self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.channel_name = None
        # Server events are pumped by this task, layer messages by a reader task; the turn
        # makes their handlers take turns. The reader hands its failure (or StopConsumer) over
        # by cancelling this task, which owns the consumer's lifetime. Every frame here lives
        # as long as the connection: keep the nesting shallow.
        turn = _Turn()
        reader = None
        try:
            if layer is not None:
                name = self.channel_name = await layer.new_channel()
                source = functools.partial(layer.receive, name)
                reader = asyncio.create_task(self._pump(source, turn, asyncio.current_task()))
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
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)
            if self.groups_joined:
                await self.leave_groups()

    async def _pump(
        self, source: Receive, turn: _Turn, owner: asyncio.Task[Any] | None = None
    ) -> None:
        """Take messages from ``source`` and handle each in turn, until ``StopConsumer``.

        This loop runs once per message of every connection: it inlines what ``dispatch``
        does unless a subclass overrides ``dispatch``. With an ``owner`` (the layer reader),
        an ending is reported to the owner task instead of raised.
        """
        cls = type(self)
        handlers, resolve = cls._handlers, cls._resolve
        overridden = cls.dispatch is not AsyncConsumer.dispatch
        try:
            while True:
                message = await source()
                if turn.busy:
                    await turn.wait()
                else:
                    turn.busy = True
                try:
                    if overridden:
                        await self.dispatch(message)
                    else:
                        kind = message.get("type")
                        try:
                            handler, is_async = handlers[kind]
                        except (KeyError, TypeError):  # first of its type, or unhashable
                            handler, is_async = resolve(kind)
                        if is_async:
                            await handler(self, message)
                        else:
                            await sync_to_async(handler, thread_sensitive=False)(self, message)
                except StopConsumer:
                    raise
                except Exception as exc:
                    await self.handle_exception(exc, message)
                finally:
                    turn.release()
        except BaseException as exc:
            if owner is None or isinstance(exc, asyncio.CancelledError):
                raise
            self._reader_failure = exc
            owner.cancel()

    async def dispatch(self, message: Message) -> None:
        """Run the handler for ``message["type"]``: awaited if async, in a thread if not."""
        handler, is_async = self._resolve(message.get("type"))
        if is_async:
            await handler(self, message)
        else:
            await sync_to_async(handler, thread_sensitive=False)(self, message)

    async def handle_exception(self, exc: Exception, message: Message) -> None:
        """Called when a handler raises; the default re-raises, ending the consumer."""
        raise exc

    @classmethod
    def _resolve(cls, message_type: object) -> tuple[Handler, bool]:
        try:
            return cls._handlers[message_type]
        except (KeyError, TypeError):
            pass
        if not isinstance(message_type, str):
            raise UnhandledMessageType(message_type, cls.__qualname__, "type must be a str")
        name = message_type.replace(".", "_")
        if name.startswith("_") or name in _NOT_HANDLERS:
            raise UnhandledMessageType(message_type, cls.__qualname__, f"{name!r} is not a handler")
        handler = getattr(cls, name, None)
        if not inspect.isfunction(handler):
            raise UnhandledMessageType(message_type, cls.__qualname__)
        is_async = inspect.iscoroutinefunction(handler)
        if not is_async and not cls.sync_handlers:
            raise TypeError(
                f"{cls.__qualname__}.{name} must be 'async def' in an async consumer "
                f"(or derive from SyncConsumer)"
            )
        cls._handlers[message_type] = (handler, is_async)
        return handler, is_async

    #: whether plain ``def`` handlers and hooks are allowed (run in a worker thread)
    sync_handlers: ClassVar[bool] = False

    async def call_hook(self, hook: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call a user hook (``connect``, ``receive``...): awaited if async, else in a thread."""
        function = getattr(hook, "__func__", hook)
        is_async = _IS_ASYNC.get(function)
        if is_async is None:
            is_async = _IS_ASYNC[function] = inspect.iscoroutinefunction(function)
        if is_async:
            return await hook(*args, **kwargs)
        if not self.sync_handlers:
            raise TypeError(f"{hook.__qualname__} must be 'async def' in an async consumer")
        return await sync_to_async(hook, thread_sensitive=False)(*args, **kwargs)

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
        if layer is not None and name is not None:
            for group in joined:
                await layer.group_discard(group, name)


@framework_class()
class SyncConsumer(AsyncConsumer):
    """A consumer whose handlers are plain ``def``: each runs in a worker thread.

    Handlers may block (ORM calls, file I/O); ``self.send`` blocks until the message is sent.
    """

    sync_handlers = True

    def send(self, message: Message) -> None:  # type: ignore[override]
        async_to_sync(AsyncConsumer.send)(self, message)


class _Turn:
    """Mutual exclusion between a consumer's two message pumps (server and layer).

    Unlike ``asyncio.Lock`` it creates no coroutine when free, which matters once per message.
    With two pumps at most one task waits. Hazard: a waiter cancelled just after being handed
    the turn must pass it on, or the other pump would wait forever; ``wait`` does that.
    """

    __slots__ = ("busy", "waiting")

    def __init__(self) -> None:
        self.busy = False
        self.waiting: asyncio.Future[None] | None = None

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
# Hook function -> whether it is a coroutine function; one entry per hook defined in code.
_IS_ASYNC: dict[object, bool] = {}

__all__ = ["AsyncConsumer", "ConsumerApp", "SyncConsumer", "framework_class"]
