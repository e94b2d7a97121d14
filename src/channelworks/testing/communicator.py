"""``ApplicationCommunicator``: drive one ASGI application instance from a test.

As asgiref's (and so Channels'), a timeout while waiting for output stops the application and
raises ``TimeoutError``; after it every call raises ``ApplicationStopped`` (a
``CancelledError``, which is what Channels' tests expect). To check that nothing comes while
the application keeps running, use ``receive_nothing``. The application runs in a fresh
``contextvars.Context`` so the test's context variables do not leak into it.

Rules of this file:
- a ``receive_output`` cut short (its own timeout, or a caller's ``asyncio.wait_for``) never
  takes a message from the application without returning it: the next call gets it;
- while the test waits for the application, ``close_old_connections`` is suspended
  (``channelworks.db.connections_kept``), so the application's ORM calls do not close the
  connection that holds the test's transaction.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote, urlsplit

from channelworks.db import connections_kept
from channelworks.types import ASGIApp, Message, Scope


def connection_scope(
    kind: str, path: str, headers: Iterable[tuple[bytes, bytes]] | None, **extra: Any
) -> dict[str, Any]:
    """An ASGI ``http`` or ``websocket`` scope for ``path`` (which may carry a query string)."""
    parts = urlsplit(path)
    return {
        "type": kind,
        "asgi": {"version": "3.0", "spec_version": "2.4" if kind == "websocket" else "2.3"},
        "http_version": "1.1",
        "scheme": "ws" if kind == "websocket" else "http",
        "path": unquote(parts.path),
        "raw_path": parts.path.encode("latin-1"),
        "query_string": parts.query.encode("latin-1"),
        "root_path": "",
        "headers": list(headers or []),
        "client": ("127.0.0.1", 51000),
        "server": ("testserver", 80),
        **extra,
    }


class ApplicationStopped(asyncio.CancelledError):
    """The communicator stopped the application (a receive timed out, or ``stop()``): it
    cannot be fed or read any more."""


class ApplicationCommunicator:
    """Runs ``application(scope, receive, send)`` as a task fed and drained by the test."""

    def __init__(self, application: ASGIApp, scope: Scope) -> None:
        self.application = application
        self.scope = scope
        self.input_queue: asyncio.Queue[Message] = asyncio.Queue()
        self.output_queue: asyncio.Queue[Message] = asyncio.Queue()
        #: messages taken from ``output_queue`` by a receive that was cancelled before returning
        self._unreturned: deque[Message] = deque()
        self.future: asyncio.Task[None] = asyncio.get_running_loop().create_task(
            self._run(), context=contextvars.Context()
        )

    async def _run(self) -> None:
        await self.application(self.scope, self.input_queue.get, self.output_queue.put)

    async def send_input(self, message: Message) -> None:
        """Give ``message`` to the application's ``receive``; raises if it already ended badly."""
        if self.future.done():
            self._raise_outcome()
        await self.input_queue.put(message)

    def _raise_outcome(self) -> None:
        """Re-raise the ended application's error; a stopped one raises ``ApplicationStopped``."""
        if self.future.cancelled():
            raise ApplicationStopped("The application was stopped (cancelled) by the communicator")
        self.future.result()

    async def receive_output(self, timeout: float = 1) -> Message:
        """The next message the application sent.

        Raises the application's exception if it crashed, and ``TimeoutError`` if nothing
        arrives within ``timeout`` seconds, after stopping the application (as asgiref does).
        """
        if self._unreturned:
            return self._unreturned.popleft()
        if self.output_queue.empty() and self.future.done():
            self._raise_outcome()
            raise TimeoutError("The application has ended without sending a message")
        getter = asyncio.ensure_future(self.output_queue.get())
        try:
            with connections_kept():
                done, _ = await asyncio.wait(
                    {getter, self.future}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
        except BaseException:
            # Cancelled from outside: a message already taken is kept for the next call; a
            # Queue.get cancelled before it took one takes nothing.
            if getter.done() and not getter.cancelled():
                self._unreturned.append(getter.result())
            else:
                getter.cancel()
            raise
        if getter in done:
            return getter.result()
        getter.cancel()
        await asyncio.gather(getter, return_exceptions=True)
        if self.future.done():
            if not self.output_queue.empty():
                return self.output_queue.get_nowait()
            self._raise_outcome()
            raise TimeoutError("The application has ended without sending a message")
        await self.stop(exceptions=False)
        if self.future.cancelled():
            raise TimeoutError(f"No message from the application within {timeout} s")
        # It ended by itself while being stopped: its own error is the better answer.
        self._raise_outcome()
        raise TimeoutError(f"No message from the application within {timeout} s")

    async def receive_nothing(self, timeout: float = 0.1, interval: float = 0.01) -> bool:
        """True if the application sends nothing within ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        with connections_kept():
            while self.output_queue.empty() and not self._unreturned:
                if loop.time() >= deadline:
                    return True
                await asyncio.sleep(interval)
        return False

    async def wait(self, timeout: float = 1) -> None:
        """Wait for the application to end; re-raise its error. Cancels it on timeout."""
        try:
            with connections_kept():
                await asyncio.wait_for(asyncio.shield(self.future), timeout)
        except TimeoutError:
            await self.stop()
            raise
        self.future.result()

    async def stop(self, exceptions: bool = True) -> None:
        """Cancel the application and wait for it; re-raise its error if ``exceptions``."""
        if not self.future.done():
            self.future.cancel()
        with connections_kept():
            result = await asyncio.gather(self.future, return_exceptions=True)
        error = result[0]
        if exceptions and isinstance(error, Exception):
            raise error

    async def __aenter__(self) -> ApplicationCommunicator:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.stop(exceptions=False)


__all__ = ["ApplicationCommunicator", "ApplicationStopped"]
