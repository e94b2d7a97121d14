"""Django database access from async code and from worker threads.

Django closes stale or broken connections at the start and end of each HTTP request; a
long-lived socket has no requests, so code that uses the ORM from a consumer must do the same
around each call. ``database_sync_to_async`` does it for one function; sync consumers' handlers
get it automatically (see ``channelworks.consumers.handlers``).

Hazard, in tests: a Django ``TestCase`` holds its transaction on the connection of the test's
thread, and the ORM calls of an application driven by a test communicator run on that same
thread. Closing "old" connections there would close the test's transaction (Django drops a
connection whose autocommit differs from the settings). So while a communicator waits for its
application, connections inside a transaction are kept (``connections_kept``), as Channels'
communicator keeps them (it suspends the closing altogether).
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar, overload

from asgiref.sync import SyncToAsync, sync_to_async
from django.conf import settings
from django.utils.functional import empty

P = ParamSpec("P")
R = TypeVar("R")


#: how many ``connections_kept`` blocks are open; above zero, connections inside a transaction
#: (a test's) are kept
_kept = 0


@contextmanager
def connections_kept() -> Iterator[None]:
    """While the block runs, ``close_old_connections`` keeps connections that are inside a
    transaction (``atomic``), in the whole process; it still closes the others.

    For test tools only: ``channelworks.testing``'s communicators hold it while the
    application runs, so a ``TestCase``'s transaction survives the application's ORM calls.
    """
    global _kept
    _kept += 1
    try:
        yield
    finally:
        _kept -= 1


#: Django's ``close_old_connections``, once its settings are configured (they stay so): found
#: once, not per call (this runs around every sync handler)
_django_close: Callable[[], None] | None = None
#: where Django keeps each thread's connections (asgiref's thread-critical ``Local``: a
#: ``threading.local`` holding the connections, or, under a running loop, a context-variable
#: store): empty in a thread that never opened one. ``None``: not known, always ask Django.
_thread_connections: threading.local | None = None
#: ``settings``' own attributes: ``settings.configured`` without the lazy object's Python-level
#: attribute look-ups (a sync handler's call costs them twice when Django is not configured)
_settings_state: dict[str, Any] = object.__getattribute__(settings, "__dict__")


def close_old_connections() -> None:
    """Close the connections Django would close between two requests (a no-op without Django
    settings; see ``connections_kept`` for tests).

    It runs around every sync handler, and Django's own costs about 3 µs even when there is
    nothing to close; a thread that never opened a connection is told apart in a dictionary
    look-up and has nothing to close.
    """
    global _django_close
    close = _django_close
    if close is None:
        if _settings_state.get("_wrapped", empty) is empty:  # not configured (yet)
            return
        close = _find_django_close()
    storage = _thread_connections
    if storage is not None and not vars(storage):  # no connection in this thread
        return
    if _kept:
        from django.db import connections

        for connection in connections.all(initialized_only=True):
            if not connection.in_atomic_block:
                connection.close_if_unusable_or_obsolete()
        return
    close()


def _find_django_close() -> Callable[[], None]:
    """Django's ``close_old_connections`` (settings are configured), and the threads'
    connection store if it has the shape ``_thread_connections`` expects."""
    global _django_close, _thread_connections
    from django.db import close_old_connections as django_close
    from django.db import connections

    # vars(), not attributes: a missing attribute of the Local is looked up in its storage
    local = vars(getattr(connections, "_connections"))  # noqa: B009 (not in the stubs)
    storage = local.get("_storage")
    if isinstance(storage, threading.local) and local.get("_thread_critical", True):
        _thread_connections = storage
    _django_close = django_close
    return django_close


async def aclose_old_connections() -> None:
    """``close_old_connections`` from async code (it runs in Django's database thread)."""
    await sync_to_async(close_old_connections)()


class DatabaseSyncToAsync(SyncToAsync[P, R]):
    """``sync_to_async`` that closes old database connections before and after the call."""

    def thread_handler(self, loop: Any, *args: Any, **kwargs: Any) -> Any:
        close_old_connections()
        try:
            return super().thread_handler(loop, *args, **kwargs)  # type: ignore[no-untyped-call]
        finally:
            close_old_connections()


@overload
def database_sync_to_async(func: Callable[P, R]) -> Callable[P, Awaitable[R]]: ...
@overload
def database_sync_to_async(
    func: None = None, *, thread_sensitive: bool = True
) -> Callable[[Callable[P, R]], Callable[P, Awaitable[R]]]: ...


def database_sync_to_async(
    func: Callable[P, R] | None = None, *, thread_sensitive: bool = True
) -> Any:
    """Run ``func`` in a thread with Django's connection hygiene; usable as a decorator."""
    if func is None:
        return lambda f: DatabaseSyncToAsync(f, thread_sensitive=thread_sensitive)
    return DatabaseSyncToAsync(func, thread_sensitive=thread_sensitive)


__all__ = [
    "DatabaseSyncToAsync",
    "aclose_old_connections",
    "close_old_connections",
    "connections_kept",
    "database_sync_to_async",
]
