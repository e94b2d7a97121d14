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

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar, overload

from asgiref.sync import SyncToAsync, sync_to_async

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


def close_old_connections() -> None:
    """Close the connections Django would close between two requests (a no-op without Django
    settings; see ``connections_kept`` for tests)."""
    global _django_close
    close = _django_close
    if close is None:
        from django.conf import settings

        if not settings.configured:
            return
        from django.db import close_old_connections as django_close

        close = _django_close = django_close
    if _kept:
        from django.db import connections

        for connection in connections.all(initialized_only=True):
            if not connection.in_atomic_block:
                connection.close_if_unusable_or_obsolete()
        return
    close()


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
