"""Which methods a message may reach, and how a handler or hook is run.

Rules of this file:
- a message of type ``a.b`` goes to the method ``a_b``, and only if it is a *handler*: a
  method defined in the class body of the consumer or of one of its bases, not private
  (``_``), not a static or class method, and not a name that a framework class declared as
  API (``send``, ``close``, ``connect``...). A subclass overriding an API name does not make
  it a handler;
- the lookup walks the class's ``__mro__`` and nothing else: never the metaclass (``type.mro``
  and ``ABCMeta.register`` are attributes of every consumer class), never ``object`` or another
  builtin base, never an instance attribute. Clients choose the types that reach this code (a
  consumer that forwards client JSON to ``group_send``), so every name that is not a handler
  must fail here, before anything is called;
- a method is a function (``def``/``async def``, decorated or not) or a callable descriptor
  that binds to the instance (``sync_to_async``, ``database_sync_to_async``); a class, a
  builtin, a C method or any other callable object stored on the class is not, except a mock
  patched over a handler in a test;
- ``async def`` handlers (and plain ``def`` marked with asgiref's ``markcoroutinefunction``,
  which return an awaitable) are awaited on the event loop. In a consumer that allows sync
  handlers, another plain ``def`` runs in a worker thread of a pool shared by the process
  (sync_pool.py); in an async consumer a plain ``def`` is accepted only if it returns an
  awaitable (a decorator's wrapper), else it is an error;
- resolutions are cached per class and re-checked against the class attribute on every use,
  so patching a handler on the class (``mock.patch.object``) takes effect at once.
"""

from __future__ import annotations

import enum
import inspect
import sys
import types
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from asgiref.sync import iscoroutinefunction

from channelworks.consumers.sync_pool import run_sync, run_sync_handler
from channelworks.exceptions import UnhandledMessageType

T = TypeVar("T", bound=type)


class Mode(enum.Enum):
    """How a resolved handler is run."""

    AWAIT = "await"  # async def: awaited on the loop
    THREAD = "thread"  # plain def in a sync consumer: run in the sync pool
    CALL_THEN_AWAIT = "call"  # plain def in an async consumer: its result must be awaitable


#: a cached resolution: (method name, the class attribute it came from, a callable taking
#: (consumer, message), how to run it)
Resolution = tuple[str, object, Callable[[Any, Any], Any], Mode]

_API_NAMES = "_channelworks_api_names"


def framework_class(*handlers: str) -> Callable[[T], T]:
    """Mark a framework consumer class: its public names other than ``handlers`` are API."""

    def mark(cls: T) -> T:
        api = frozenset(n for n in vars(cls) if not n.startswith("_") and n not in handlers)
        setattr(cls, _API_NAMES, api)
        return cls

    return mark


def api_names(cls: type) -> frozenset[str]:
    """Every API name declared by the framework classes ``cls`` derives from."""
    names: set[str] = set()
    for base in cls.__mro__:
        names.update(vars(base).get(_API_NAMES, ()))
    return frozenset(names)


def get_handler_name(message: Mapping[str, Any]) -> str:
    """The name of the consumer method that handles ``message``: its ``type`` with dots made
    underscores (``"chat.message"`` is handled by ``chat_message``).

    ``ValueError`` if the message has no ``type`` str, or one starting with ``_`` (never a
    handler). Dispatch itself also refuses types naming API methods; this does not look at a
    consumer class.
    """
    kind = message.get("type") if isinstance(message, Mapping) else None
    if not isinstance(kind, str) or not kind:
        raise ValueError(f"A message needs a 'type' that is a non-empty str, got {kind!r}")
    if kind.startswith("_"):
        raise ValueError(f"A message type may not start with '_': {kind!r}")
    return kind.replace(".", "_")


def resolve(cls: type, message_type: object, sync_allowed: bool) -> Resolution:
    """Find the handler of ``message_type`` on ``cls``, or raise ``UnhandledMessageType``."""
    where = cls.__qualname__
    if not isinstance(message_type, str):
        raise UnhandledMessageType(message_type, where, "type must be a str")
    name = message_type.replace(".", "_")
    if name.startswith("_") or name in api_names(cls):
        raise UnhandledMessageType(message_type, where, f"{name!r} is not a handler")
    owner, attribute = defined_in(cls, name)
    if owner is None:
        raise UnhandledMessageType(message_type, where)
    if not owner.__flags__ & _HEAP_TYPE or not is_method(attribute):
        raise UnhandledMessageType(message_type, where, f"{name!r} is not a handler")
    if isinstance(attribute, types.FunctionType):
        call: Callable[[Any, Any], Any] = attribute
    else:  # a descriptor binds itself; a mock is called without the instance, as by Python

        def call(consumer: Any, message: Any) -> Any:
            return getattr(consumer, name)(message)

        call.__qualname__ = f"{where}.{name}"

    if iscoroutinefunction(attribute):  # asgiref's: a function marked as one counts
        return name, attribute, call, Mode.AWAIT
    return name, attribute, call, Mode.THREAD if sync_allowed else Mode.CALL_THEN_AWAIT


def defined_in(cls: type, name: str) -> tuple[type | None, object]:
    """The first class of ``cls.__mro__`` whose body holds ``name``, and the value there.

    ``(None, None)`` if none does. Unlike ``getattr``, this never finds the metaclass's
    attributes, nor an instance's.
    """
    for klass in cls.__mro__:
        namespace = vars(klass)
        if name in namespace:
            return klass, namespace[name]
    return None, None


#: ``Py_TPFLAGS_HEAPTYPE``: set on every class made by a ``class`` statement or ``type()``,
#: never on ``object`` and the other builtin types (whose ``__module__`` cannot tell: a class
#: made by ``exec`` without a ``__name__`` says ``"builtins"`` too)
_HEAP_TYPE = 1 << 9

# What Python itself stores on classes: C methods and slot wrappers (``dict.get``,
# ``object.__eq__``), never written by a consumer's author as a handler.
_C_CALLABLES = (
    types.BuiltinFunctionType,
    types.MethodDescriptorType,
    types.WrapperDescriptorType,
    types.MethodWrapperType,
    types.ClassMethodDescriptorType,
)


def is_method(attribute: object) -> bool:
    """Whether a class attribute is a method that a message may call."""
    if isinstance(attribute, types.FunctionType):
        return True
    if not callable(attribute) or isinstance(
        attribute, (type, staticmethod, classmethod, property, *_C_CALLABLES)
    ):
        return False
    if hasattr(type(attribute), "__get__"):  # binds like a function: sync_to_async...
        return True
    # A mock patched over a handler (``mock.patch.object(Consumer, "chat_message", ...)``). If
    # unittest.mock was never imported, nothing on the class can be a mock.
    mock = sys.modules.get("unittest.mock")
    return mock is not None and isinstance(attribute, mock.NonCallableMock)


def lookup(cls: type, cache: dict[object, Resolution], message_type: object) -> Resolution:
    """``resolve``, remembered in ``cache`` while the class attribute stays the same."""
    try:
        entry = cache[message_type]
    except (KeyError, TypeError):  # first of its type, or an unhashable type
        pass
    else:
        # A descriptor (asgiref's sync_to_async on a method) makes a new object on every
        # access: compare the stored attribute itself before resolving again.
        if inspect.getattr_static(cls, entry[0], None) is entry[1]:
            return entry
    entry = resolve(cls, message_type, getattr(cls, "sync_handlers", False))
    cache[message_type] = entry
    return entry


async def await_result(result: object, label: str) -> Any:
    """Await what a plain ``def`` handler or hook of an async consumer returned.

    The call has already run by then (on the event loop); it is an error if it returned no
    awaitable.
    """
    if not inspect.isawaitable(result):
        raise TypeError(
            f"{label} must be 'async def' in an async consumer (or derive from SyncConsumer)"
        )
    return await result


def run_handler(
    call: Callable[[Any, Any], Any], mode: Mode, consumer: Any, message: Any
) -> Awaitable[Any]:
    """Run a resolved handler the way its resolution says; await what this returns.

    Not a coroutine itself: a layer message to a sync consumer gets the pool's call to await
    (sync_pool.py), without a coroutine around it.
    """
    if mode is Mode.THREAD:
        return run_sync_handler(consumer, call, message)
    if mode is Mode.AWAIT:
        result: Awaitable[Any] = call(consumer, message)
        return result
    return await_result(call(consumer, message), call.__qualname__)


async def in_thread(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a blocking ``function`` in the sync pool (sync_pool.py); ``async_to_sync`` works
    inside it.

    With Django configured, stale database connections are closed before and after the call,
    as between two HTTP requests, so sync handlers may use the ORM directly.
    """
    return await run_sync(None, function, *args, **kwargs)


# Bound-method hooks: function -> is it a coroutine function. Keyed by functions defined on
# classes only, so the table grows with the code, not with the connections.
_HOOK_KINDS: dict[object, bool] = {}


def is_async_hook(hook: Callable[..., Any]) -> bool:
    function = getattr(hook, "__func__", None)
    if function is None:
        return inspect.iscoroutinefunction(hook)
    kind = _HOOK_KINDS.get(function)
    if kind is None:
        kind = _HOOK_KINDS[function] = inspect.iscoroutinefunction(function)
    return kind


__all__ = [
    "Mode",
    "await_result",
    "defined_in",
    "framework_class",
    "get_handler_name",
    "in_thread",
    "is_async_hook",
    "is_method",
    "lookup",
    "resolve",
    "run_handler",
]
