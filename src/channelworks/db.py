"""Django database access from async code and from worker threads.

Django closes stale or broken connections at the start and end of each HTTP request; a
long-lived socket has no requests, so code that uses the ORM from a consumer must do the same
around each call. ``database_sync_to_async`` does it for one function; sync consumers' handlers
get it automatically (see ``channelworks.consumers.handlers``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar, overload

from asgiref.sync import SyncToAsync, sync_to_async

P = ParamSpec("P")
R = TypeVar("R")


def close_old_connections() -> None:
    """Close the connections Django would close between two requests (a no-op without Django
    settings)."""
    from django.conf import settings

    if not settings.configured:
        return
    from django.db import close_old_connections as django_close_old_connections

    django_close_old_connections()


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
    "database_sync_to_async",
]
