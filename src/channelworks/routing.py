"""Routers: pick the application for a scope by protocol type, URL path or channel name.

Every router is itself an ASGI application, so they nest, and each returns what the
application it called returns: it hands over the application's awaitable (an
``Asgi3Callable``), so no router frame waits in a connection's await chain. A scope no
route matches raises ``NoRouteFound`` (a ``ValueError``, as in Channels), except a WebSocket
at the outermost ``URLRouter``: that one is refused before accept (the server answers 403)
with one log line, since any client can ask for any path.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Awaitable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.urls import URLPattern, URLResolver
from django.urls import path as django_path
from django.urls import re_path as django_re_path

from channelworks.exceptions import NoRouteFound
from channelworks.types import AnyASGIApp, Asgi3Callable, ASGIApp, Receive, Scope, Send

logger = logging.getLogger("channelworks.routing")


class ProtocolTypeRouter(Asgi3Callable):
    """Routes on ``scope["type"]`` (``http``, ``websocket``, ``channel``, or any custom type).

    ``lifespan`` is answered here unless the mapping names an application for it.
    """

    def __init__(self, application_mapping: Mapping[str, AnyASGIApp]) -> None:
        self.application_mapping = dict(application_mapping)

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[Any]:
        app = self.application_mapping.get(scope["type"])
        if app is not None:
            return app(scope, receive, send)
        if scope["type"] == "lifespan":
            return _answer_lifespan(receive, send)
        raise NoRouteFound("protocol type", scope["type"])


async def _answer_lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            # Close the layers before the process ends, so other processes stop sending to
            # it at once rather than after its liveness expires (lifespan.py).
            from channelworks.lifespan import close_channel_layers

            await close_channel_layers()
            await send({"type": "lifespan.shutdown.complete"})
            return


class URLRouter(Asgi3Callable):
    """Routes on the URL path with Django's ``path()`` and ``re_path()`` entries.

    Captured values go to ``scope["url_route"]`` as ``args`` and ``kwargs`` (with the
    ``kwargs=`` given to ``path()`` merged in); the matched route's ``name`` goes to
    ``scope["route_name"]``. A route may point at another ``URLRouter`` (or at an application
    whose ``_path_routing`` is ``True``, such as a middleware around one), which then matches
    the rest of the path and adds its own captures; if it has no match, the next route of the
    outer router is tried.
    """

    #: tells an outer router to match this router's route as a prefix (as in Channels)
    _path_routing = True

    def __init__(self, routes: Sequence[Any]) -> None:
        self.routes = list(routes)
        for route in self.routes:
            if isinstance(route, URLResolver):
                raise ImproperlyConfigured(
                    f"{route}: include() is not supported in URLRouter. Use nested URLRouter "
                    "instances instead."
                )
            if not callable(getattr(route, "callback", None)):
                raise TypeError(f"Route {route!r} has no application; use path() or re_path()")
            if getattr(route.callback, "_path_routing", False) is True:
                # Django builds path() patterns as endpoints (anchored at the end); a nested
                # router needs the same pattern as a prefix match.
                pattern = route.pattern
                route.pattern = type(pattern)(str(pattern), name=pattern.name, is_endpoint=False)

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[Any]:
        # A route to an application returns that application's awaitable (Asgi3Callable).
        # A route to a nested router is awaited in ``_route``: a nested router without a
        # match makes this one try its next route.
        matches = self._matches(scope)
        found = next(matches, None)
        if found is None or getattr(found[0], "_path_routing", False) is True:
            return self._route(scope, found, matches, receive, send)
        app, child = found
        return app(child, receive, send)

    async def _route(
        self,
        scope: Scope,
        found: tuple[AnyASGIApp, Scope] | None,
        matches: Iterator[tuple[AnyASGIApp, Scope]],
        receive: Receive,
        send: Send,
    ) -> Any:
        # This frame lives as long as the connection: it keeps no more than it must.
        while found is not None:
            app, child = found
            found = None
            try:
                return await app(child, receive, send)
            except _InnerNoRoute:
                found = next(matches, None)  # a nested router had nothing: Channels tries on
        if "path_remaining" in scope:  # not the outermost router
            raise _InnerNoRoute("path", scope["path"])
        if scope["type"] == "websocket":
            return await _refuse_websocket(receive, send, scope["path"])
        raise NoRouteFound("path", scope["path"])

    @staticmethod
    def _path(scope: Scope) -> str | None:
        """The part of the path this router matches; ``None`` if outside ``root_path``."""
        path: str | None = scope.get("path_remaining")
        if path is None:
            path = scope["path"]
            root = scope.get("root_path", "")
            if root:
                if not path.startswith(root):
                    return None
                path = path[len(root) :]
            path = path.lstrip("/")
        return path

    @staticmethod
    def _child(
        scope: Scope, route: Any, match: tuple[str, tuple[Any, ...], dict[str, Any]]
    ) -> Scope:
        remaining, args, kwargs = match
        outer = scope.get("url_route", _NO_ROUTE)
        child = dict(scope)
        child["path_remaining"] = remaining
        child["url_route"] = {
            "args": (*outer["args"], *args),
            "kwargs": {**outer["kwargs"], **kwargs, **route.default_args},
        }
        child["route_name"] = route.name or scope.get("route_name")
        return child

    def route(self, scope: Scope) -> tuple[AnyASGIApp, Scope] | None:
        """The application for ``scope`` and the scope to give it, or ``None``.

        Looks at this router's own routes only: a nested router is returned, not entered.
        """
        return next(self._matches(scope), None)

    def _matches(self, scope: Scope) -> Iterator[tuple[AnyASGIApp, Scope]]:
        """Each route of this router that matches ``scope``, in order, with its child scope."""
        path = self._path(scope)
        if path is None:
            return
        for route in self.routes:
            match = route.pattern.match(path)
            if match is not None:
                yield route.callback, self._child(scope, route, match)


_NO_ROUTE: dict[str, Any] = {"args": (), "kwargs": {}}


class _InnerNoRoute(NoRouteFound):
    """A nested router found no route: the outer router tries its next route.

    Only this class is caught there, so an application's own errors are never mistaken for a
    missing route.
    """


async def _refuse_websocket(receive: Receive, send: Send, path: object) -> None:
    """Turn away a WebSocket no route matched: closed before accept, with one log line."""
    logger.warning("No route found for websocket path %r; refusing the socket", path)
    await receive()  # websocket.connect
    await send({"type": "websocket.close", "code": 1000})


class ChannelNameRouter(Asgi3Callable):
    """Routes ``channel`` scopes (worker processes) on ``scope["channel"]``."""

    def __init__(self, application_mapping: Mapping[str, AnyASGIApp]) -> None:
        self.application_mapping = dict(application_mapping)

    @property
    def channel_names(self) -> Iterable[str]:
        return self.application_mapping.keys()

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[Any]:
        try:
            app = self.application_mapping[scope["channel"]]
        except KeyError:
            raise NoRouteFound("channel", scope.get("channel")) from None
        return app(scope, receive, send)


def path(
    route: str, app: AnyASGIApp, kwargs: dict[str, Any] | None = None, name: str | None = None
) -> URLPattern:
    """Django's ``path()`` typed for ASGI applications (the two behave the same)."""
    return django_path(route, app, kwargs, name)  # type: ignore[arg-type]


def re_path(
    route: str, app: AnyASGIApp, kwargs: dict[str, Any] | None = None, name: str | None = None
) -> URLPattern:
    """Django's ``re_path()`` typed for ASGI applications (the two behave the same)."""
    return django_re_path(route, app, kwargs, name)  # type: ignore[arg-type]


def get_default_application() -> ASGIApp:
    """The application named by Django's ``ASGI_APPLICATION`` setting."""
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    path = getattr(settings, "ASGI_APPLICATION", None)
    if not isinstance(path, str) or "." not in path:
        raise ImproperlyConfigured(
            "ASGI_APPLICATION must name your application, like 'mysite.asgi.application'"
        )
    module_name, _, name = path.rpartition(".")
    try:
        value: ASGIApp = getattr(importlib.import_module(module_name), name)
    except Exception as exc:  # any error while importing the project's module, named once
        raise ImproperlyConfigured(
            f"Cannot import ASGI_APPLICATION {path!r}: {type(exc).__name__}: {exc}"
        ) from exc
    return value


__all__ = [
    "ChannelNameRouter",
    "ProtocolTypeRouter",
    "URLRouter",
    "get_default_application",
    "path",
    "re_path",
]
