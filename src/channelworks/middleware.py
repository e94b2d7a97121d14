"""``BaseMiddleware``: the shape of an ASGI middleware that adds to the scope.

A middleware wraps an application; for each connection it may add keys to a *copy* of the
scope (never the caller's dict) and then calls the inner application. Scope types it does not
handle pass through untouched.
"""

from __future__ import annotations

from channelworks.types import AnyASGIApp, Receive, Scope, Send


class BaseMiddleware:
    """Subclass and override ``__call__``; call ``super().__call__`` with the new scope."""

    def __init__(self, inner: AnyASGIApp) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.inner(dict(scope), receive, send)


__all__ = ["BaseMiddleware"]
