"""Calls of one sync function made at about the same time, run in one database hop.

A reconnect storm (every client of a restarted server connecting at once) makes one database
call per handshake (its session and user). In Django's database thread they run one after
another, and each is a request of its own for the connection hygiene: with the default
``CONN_MAX_AGE = 0`` each one opens and closes a database connection (PostgreSQL: a new
backend process per handshake). ``Batched`` lets the calls that arrive while an earlier one
waits for the thread join it: one hop, one connection, the calls one after another.

Rules of this file:
- each call is run exactly once, with its own arguments, and gets its own result or error;
  an error of one call is not seen by the others;
- a batch is closed when the thread starts it: a later call waits for the next hop;
- a caller cancelled while waiting leaves the batch running for the others (its own call is
  still made: it may have been started);
- calls from another event loop than the batch's start a batch of their own.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from channelworks.db import database_sync_to_async

T = TypeVar("T")

logger = logging.getLogger("channelworks.db")


class _Batch:
    __slots__ = ("calls", "loop", "outcomes", "started")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.calls: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self.outcomes: list[tuple[Any, BaseException | None]] = []
        self.started = False


class Batched(Generic[T]):
    """``await batched(*args)`` runs ``function(*args)`` in Django's database thread, in one
    hop with the calls that arrive while an earlier one waits for that thread.

    ``before``, if given, is called in the thread first with the arguments of every call of the
    hop (to fetch what they need in one query), when the hop has more than one call; what it
    returns is passed to each call after its own arguments (``None`` if it was not called, or
    raised: that is logged, and the calls are made anyway).
    """

    def __init__(
        self,
        function: Callable[..., T],
        before: Callable[[list[tuple[Any, ...]]], Any] | None = None,
    ) -> None:
        self.function = function
        self.before = before
        self._lock = threading.Lock()  # the loop adds to the batch, the thread closes it
        self._open: _Batch | None = None

    async def __call__(self, *args: Any) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._lock:
            batch = self._open
            joined = batch is not None and batch.loop is loop and not batch.started
            if not joined:
                batch = self._open = _Batch(loop)
            assert batch is not None
            batch.calls.append((args, future))
        if not joined:
            hop: asyncio.Future[None] = asyncio.ensure_future(
                database_sync_to_async(self._run)(batch)
            )
            hop.add_done_callback(lambda done: self._hand_out(batch, done))
        return await future

    def _run(self, batch: _Batch) -> None:
        """In the database thread: close the batch, then make each call."""
        with self._lock:
            batch.started = True
            if self._open is batch:
                self._open = None
        extra: tuple[Any, ...] = ()
        if self.before is not None:
            fetched = None
            if len(batch.calls) > 1:
                try:
                    fetched = self.before([args for args, _ in batch.calls])
                except Exception:
                    logger.exception("Fetching for %d calls at once failed", len(batch.calls))
            extra = (fetched,)
        for args, _ in batch.calls:
            try:
                batch.outcomes.append((self.function(*args, *extra), None))
            except Exception as exc:  # that call's own error, handed to its caller only
                batch.outcomes.append((None, exc))

    def _hand_out(self, batch: _Batch, hop: asyncio.Future[None]) -> None:
        failed = None if hop.cancelled() else hop.exception()
        for index, (_, future) in enumerate(batch.calls):
            if future.done():  # its caller was cancelled
                continue
            if index < len(batch.outcomes):
                result, error = batch.outcomes[index]
                if error is None:
                    future.set_result(result)
                else:
                    future.set_exception(error)
            else:  # the hop itself failed (or was cancelled) before this call was made
                future.set_exception(failed or RuntimeError("the database call was cancelled"))


__all__ = ["Batched"]
