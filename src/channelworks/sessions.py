"""Cookies and Django sessions in the scope: ``CookieMiddleware``, ``SessionMiddleware``.

Rules of this file:

- only ``http`` and ``websocket`` scopes are handled; any other scope type passes through
  untouched, and the caller's scope dict is never modified (each middleware adds its key to a
  copy, which it hands to the inner application and keeps no reference to: a middleware's
  frame lasts as long as the connection, and a copy per middleware would too);
- cookie parsing never raises: a header Django cannot make sense of gives fewer cookies, not an
  error;
- ``scope["session"]`` is a session store of ``settings.SESSION_ENGINE`` built from the cookie
  named ``settings.SESSION_COOKIE_NAME``. Django's stores are lazy: nothing is read until the
  session is first used, and a malformed or unknown key gives an empty session;
- reading or saving a database-backed session is blocking I/O. Sync consumers do it directly;
  async code awaits the store's ``a``-methods (``aget``, ``asave``...) or wraps the sync ones in
  ``database_sync_to_async``. Hazard: a sync call on the event loop raises Django's
  ``SynchronousOnlyOperation``;
- a WebSocket session is saved only when the consumer saves it: the cookie cannot change once
  the socket is open. For ``http`` scopes the session is saved, and its cookie set (one
  ``Set-Cookie`` header, no ``Vary``, as Channels does), when the response starts, by the rules
  of Django's ``SessionMiddleware``; a session deleted meanwhile (a logout elsewhere) raises
  ``SessionDeleted``, Channels' ``SuspiciousOperation``.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Iterable
from importlib import import_module
from typing import Any, Literal, cast

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.contrib.sessions.exceptions import SessionInterrupted
from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation
from django.http import HttpRequest, HttpResponse
from django.http.cookie import parse_cookie

from channelworks.db import database_sync_to_async
from channelworks.exceptions import ChannelworksError
from channelworks.middleware import BaseMiddleware
from channelworks.types import AnyASGIApp, Message, Receive, Scope, Send

SameSite = Literal["Lax", "Strict", "None"]

#: the header name Channels writes cookies with (header names are case-insensitive)
SET_COOKIE = b"Set-Cookie"


class InvalidCookie(ChannelworksError, ValueError, AssertionError):
    """A cookie attribute Django refuses (``samesite`` not lax/strict/none, in any case).

    A ``ValueError`` as Django raises it, and an ``AssertionError`` as Channels raises it.
    """


class SessionDeleted(ChannelworksError, SessionInterrupted, SuspiciousOperation):
    """The session was deleted while the request ran (a logout in another request): it
    cannot be saved. Django's ``SessionInterrupted`` and Channels' ``SuspiciousOperation``."""


#: scope types that carry HTTP headers, hence cookies and sessions
HANDLED_SCOPE_TYPES = frozenset({"http", "websocket"})


def parse_cookies(headers: Iterable[tuple[Any, Any]]) -> dict[str, str]:
    """The cookies of a list of ASGI ``(name, value)`` header pairs, as a dict.

    Several ``cookie`` headers (HTTP/2 sends one per cookie) are joined. Never raises.
    """
    values = [
        value.decode("latin-1")
        for name, value in headers
        if isinstance(name, bytes) and isinstance(value, bytes) and name.lower() == b"cookie"
    ]
    return parse_cookie("; ".join(values)) if values else {}


class CookieMiddleware(BaseMiddleware):
    """Puts the request's cookies in ``scope["cookies"]``, a ``dict[str, str]``.

    ``set_cookie`` and ``delete_cookie`` add a ``Set-Cookie`` header to an
    ``http.response.start`` message, for HTTP consumers that build their own responses.
    """

    @staticmethod
    def set_cookie(
        message: Message,
        key: str,
        value: str = "",
        max_age: int | None = None,
        expires: str | datetime.datetime | None = None,
        path: str = "/",
        domain: str | None = None,
        secure: bool = False,
        httponly: bool = False,
        samesite: str | None = "lax",
    ) -> None:
        """Add a ``Set-Cookie`` header for ``key`` to ``message`` (formatted by Django, so the
        attributes mean what they mean on ``HttpResponse.set_cookie``; ``samesite`` is one of
        ``"lax"``, ``"strict"``, ``"none"`` in any case, written as given, or ``None``).

        ``message`` is an ``http.response.start`` message, or a dict without a ``type`` yet (as
        Channels allows); its ``headers`` list is created if missing. A bad ``samesite``
        raises ``InvalidCookie`` (a ``ValueError`` and an ``AssertionError``).
        """
        response = HttpResponse()
        try:
            response.set_cookie(
                key,
                value,
                max_age=max_age,
                expires=expires,
                path=path,
                domain=domain,
                secure=secure,
                httponly=httponly,
                samesite=cast(SameSite | None, samesite),  # Django checks it, in any case
            )
        except ValueError as exc:
            raise InvalidCookie(str(exc)) from exc
        _add_cookie_headers(message, response)

    @staticmethod
    def delete_cookie(
        message: Message, key: str, path: str = "/", domain: str | None = None
    ) -> None:
        """Add a ``Set-Cookie`` header to ``message`` that makes the browser drop ``key``."""
        response = HttpResponse()
        response.delete_cookie(key, path=path, domain=domain)
        _add_cookie_headers(message, response)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in HANDLED_SCOPE_TYPES:
            await self.inner(scope, receive, send)
            return
        scope = dict(scope)
        scope["cookies"] = parse_cookies(scope.get("headers", ()))
        inner = self.inner(scope, receive, send)
        del scope  # this frame lasts as long as the connection: it keeps no copy of the scope
        await inner


def _add_cookie_headers(message: Message, response: HttpResponse) -> None:
    if message.get("type", "http.response.start") != "http.response.start":
        raise ValueError(
            f"cookies go on an 'http.response.start' message, not {message.get('type')!r}"
        )
    headers = list(message.get("headers", ()))
    headers.extend(_cookie_headers(response))
    message["headers"] = headers


def _cookie_headers(response: HttpResponse) -> list[tuple[bytes, bytes]]:
    return [
        (SET_COOKIE, morsel.output(header="").strip().encode("latin-1"))
        for morsel in response.cookies.values()
    ]


class SessionMiddleware(BaseMiddleware):
    """Puts a per-connection Django session in ``scope["session"]``; needs ``CookieMiddleware``
    outside it (``SessionMiddlewareStack`` builds both).

    If the scope already has a session (an outer ``SessionMiddleware``) it is kept, so that
    both layers share one session and it is saved once.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in HANDLED_SCOPE_TYPES or "session" in scope:
            await self.inner(scope, receive, send)
            return
        if "cookies" not in scope:
            raise ImproperlyConfigured(
                "SessionMiddleware found no scope['cookies']: wrap it in CookieMiddleware "
                "(or use SessionMiddlewareStack)"
            )
        scope = dict(scope)
        session = scope["session"] = session_store(scope["cookies"])
        if scope["type"] == "http":
            send = functools.partial(_send_with_session_cookie, session, scope["cookies"], send)
        inner = self.inner(scope, receive, send)
        del scope  # this frame lasts as long as the connection: it keeps no copy of the scope
        await inner


def session_store(cookies: dict[str, str]) -> SessionBase:
    """A new, not yet loaded, session of ``SESSION_ENGINE`` for the cookie in ``cookies``.

    The engine is looked up on every call (a ``sys.modules`` hit) so that a changed setting,
    as in tests, takes effect at once.
    """
    engine = import_module(settings.SESSION_ENGINE)
    store: SessionBase = engine.SessionStore(cookies.get(settings.SESSION_COOKIE_NAME))
    return store


async def _send_with_session_cookie(
    session: SessionBase, cookies: dict[str, str], send: Send, message: Message
) -> None:
    """``send`` for an ``http`` scope: on the response start, save the session if Django would
    and add its ``Set-Cookie`` and ``Vary`` headers."""
    if message["type"] == "http.response.start" and (
        session.accessed or settings.SESSION_COOKIE_NAME in cookies
    ):
        extra = await database_sync_to_async(_session_response_headers)(
            session, cookies, message.get("status", 200)
        )
        if extra:
            message = {**message, "headers": [*message.get("headers", ()), *extra]}
    await send(message)


def _session_response_headers(
    session: SessionBase, cookies: dict[str, str], status: int
) -> list[tuple[bytes, bytes]]:
    """Run Django's own ``SessionMiddleware.process_response`` (save, cookie) on a stand-in
    request and response, and return its ``Set-Cookie`` header (Django's ``Vary: Cookie`` is
    left out, as Channels leaves it out)."""
    from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware

    request = HttpRequest()
    request.session = session
    request.COOKIES = cookies
    try:
        response = DjangoSessionMiddleware(_no_view).process_response(
            request, HttpResponse(status=status)
        )
    except SessionInterrupted as exc:
        raise SessionDeleted(*exc.args) from exc
    except ValueError as exc:  # a SESSION_COOKIE_SAMESITE Django refuses
        raise InvalidCookie(str(exc)) from exc
    return _cookie_headers(response)


def _no_view(request: HttpRequest) -> HttpResponse:  # pragma: no cover - never called
    raise AssertionError("the stand-in middleware only processes responses")


def SessionMiddlewareStack(inner: AnyASGIApp) -> CookieMiddleware:  # Channels' name
    """``CookieMiddleware(SessionMiddleware(inner))``: cookies and a session in the scope."""
    return CookieMiddleware(SessionMiddleware(inner))


__all__ = [
    "CookieMiddleware",
    "InvalidCookie",
    "SessionDeleted",
    "SessionMiddleware",
    "SessionMiddlewareStack",
    "parse_cookies",
    "session_store",
]
