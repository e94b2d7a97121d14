"""Routers: pick the application for a scope by protocol type, URL path or channel name.

Every router is itself an ASGI application, so they nest. A scope nobody routes is refused the
way its protocol expects (WebSocket: closed before accept, which the server answers with 403;
HTTP: 404) and logged; other protocol types raise ``NoRouteFound``.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.urls import URLPattern
from django.urls import path as django_path
from django.urls import re_path as django_re_path

from channelworks.exceptions import NoRouteFound
from channelworks.types import AnyASGIApp, ASGIApp, Receive, Scope, Send

logger = logging.getLogger("channelworks.routing")


class ProtocolTypeRouter:
    """Routes on ``scope["type"]`` (``http``, ``websocket``, ``channel``, or any custom type).

    ``lifespan`` is answered here unless the mapping names an application for it.
    """

    def __init__(self, application_mapping: Mapping[str, AnyASGIApp]) -> None:
        self.application_mapping = dict(application_mapping)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self.application_mapping.get(scope["type"])
        if app is not None:
            await app(scope, receive, send)
        elif scope["type"] == "lifespan":
            await _answer_lifespan(receive, send)
        else:
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


class URLRouter:
    """Routes on the URL path with Django's ``path()`` and ``re_path()`` entries.

    Captured values go to ``scope["url_route"]`` as ``args`` and ``kwargs`` (with the
    ``kwargs=`` given to ``path()`` merged in, and the route's ``name``); a route may point
    at another ``URLRouter``, which then matches the rest of the path and adds its own
    captures.
    """

    def __init__(self, routes: Sequence[Any]) -> None:
        self.routes = list(routes)
        for route in self.routes:
            if not callable(getattr(route, "callback", None)):
                raise TypeError(f"Route {route!r} has no application; use path() or re_path()")
            if isinstance(route.callback, URLRouter):
                # Django builds path() patterns as endpoints (anchored at the end); a nested
                # router needs the same pattern as a prefix match.
                pattern = route.pattern
                route.pattern = type(pattern)(str(pattern), name=pattern.name, is_endpoint=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # This frame lives as long as the connection: it keeps no more than it must.
        routed = self.route(scope)
        if routed is None:
            await refuse(scope, receive, send, "path", scope.get("path"))
        else:
            await routed[0](routed[1], receive, send)

    def route(self, scope: Scope) -> tuple[AnyASGIApp, Scope] | None:
        """The application for ``scope`` and the scope to give it, or ``None``."""
        path = scope.get("path_remaining")
        if path is None:
            path = scope["path"]
            root = scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root) :]
            path = path.lstrip("/")
        for route in self.routes:
            match = route.pattern.match(path)
            if match is None:
                continue
            remaining, args, kwargs = match
            outer = scope.get("url_route", _NO_ROUTE)
            child = dict(scope)
            child["path_remaining"] = remaining
            child["url_route"] = {
                "args": (*outer["args"], *args),
                "kwargs": {**outer["kwargs"], **kwargs, **route.default_args},
                "name": route.name or outer.get("name"),
            }
            return route.callback, child
        return None


_NO_ROUTE: dict[str, Any] = {"args": (), "kwargs": {}, "name": None}


async def refuse(scope: Scope, receive: Receive, send: Send, what: str, value: object) -> None:
    """Turn away a scope no route matched, in the way its protocol allows."""
    kind = scope["type"]
    if kind == "websocket":
        logger.warning("No route found for websocket %s %r; refusing the socket", what, value)
        await receive()  # websocket.connect
        await send({"type": "websocket.close", "code": 1000})
    elif kind == "http":
        logger.warning("No route found for http %s %r; answering 404", what, value)
        await send(
            {
                "type": "http.response.start",
                "status": 404,
                "headers": [(b"content-type", b"text/plain; charset=utf-8")],
            }
        )
        await send({"type": "http.response.body", "body": b"Not Found"})
    else:
        raise NoRouteFound(what, value)


class ChannelNameRouter:
    """Routes ``channel`` scopes (worker processes) on ``scope["channel"]``."""

    def __init__(self, application_mapping: Mapping[str, AnyASGIApp]) -> None:
        self.application_mapping = dict(application_mapping)

    @property
    def channel_names(self) -> Iterable[str]:
        return self.application_mapping.keys()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            app = self.application_mapping[scope["channel"]]
        except KeyError:
            raise NoRouteFound("channel", scope.get("channel")) from None
        await app(scope, receive, send)


def path(
    route: str, app: ASGIApp, kwargs: dict[str, Any] | None = None, name: str | None = None
) -> URLPattern:
    """Django's ``path()`` typed for ASGI applications (the two behave the same)."""
    return django_path(route, app, kwargs, name)  # type: ignore[arg-type]


def re_path(
    route: str, app: ASGIApp, kwargs: dict[str, Any] | None = None, name: str | None = None
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
