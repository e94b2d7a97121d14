"""Cookies and sessions in the scope: ``CookieMiddleware``, ``SessionMiddleware``."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.contrib.sessions.backends.db import SessionStore
from django.core.exceptions import ImproperlyConfigured

from channelworks.consumers import AsyncHttpConsumer, AsyncWebsocketConsumer, WebsocketConsumer
from channelworks.db import database_sync_to_async
from channelworks.sessions import (
    CookieMiddleware,
    SessionMiddleware,
    SessionMiddlewareStack,
    parse_cookies,
)
from channelworks.testing import ApplicationCommunicator, HttpCommunicator, WebsocketCommunicator
from channelworks.types import Scope
from tests.django.support import ScopeRecorder, open_socket, session_cookie

DB = pytest.mark.django_db(transaction=True)


async def record(app: Callable[[Any], Any], scope: Scope) -> Scope:
    """Run ``app`` wrapped around a ``ScopeRecorder`` on a non-connection ``scope``."""
    recorder = ScopeRecorder()
    async with ApplicationCommunicator(app(recorder), scope) as communicator:
        await communicator.wait()
    return recorder.scopes[0]


# -- cookies -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([], {}),
        ([(b"cookie", b"a=1; b=2")], {"a": "1", "b": "2"}),
        ([(b"cookie", b"a=1"), (b"cookie", b"b=2")], {"a": "1", "b": "2"}),  # HTTP/2 style
        ([(b"Cookie", b"a=1")], {"a": "1"}),
        ([(b"cookie", b'sessionid="quoted"')], {"sessionid": "quoted"}),
        ([(b"cookie", b"noequals")], {"": "noequals"}),
        ([(b"cookie", b"=;;; ;")], {}),
        ([(b"cookie", b'a="unterminated; b=2')], {"a": '"unterminated', "b": "2"}),
        ([(b"cookie", b"\xff\xfe=\x00\x01")], {"\xff\xfe": "\x00\x01"}),
        ([(b"x-other", b"a=1"), (b"cookie", b"a=2; a=3")], {"a": "3"}),
    ],
)
def test_parse_cookies_never_raises(
    headers: list[tuple[bytes, bytes]], expected: dict[str, str]
) -> None:
    assert parse_cookies(headers) == expected


async def test_cookie_middleware_puts_cookies_in_a_copy_of_the_scope() -> None:
    recorder = ScopeRecorder()
    communicator = WebsocketCommunicator(
        CookieMiddleware(recorder), "/ws/", headers=[(b"cookie", b"theme=dark; lang=ko")]
    )
    connected, _ = await communicator.connect()
    assert connected
    await communicator.disconnect()
    assert recorder.scopes[0]["cookies"] == {"theme": "dark", "lang": "ko"}
    assert "cookies" not in communicator.scope


@pytest.mark.parametrize("middleware", [CookieMiddleware, SessionMiddlewareStack])
async def test_other_scope_types_pass_through_untouched(middleware: Callable[[Any], Any]) -> None:
    scope = {"type": "channel", "channel": "worker"}
    assert await record(middleware, scope) is scope


# -- sessions ----------------------------------------------------------------------------------


async def test_session_middleware_needs_cookie_middleware() -> None:
    communicator = WebsocketCommunicator(SessionMiddleware(ScopeRecorder()), "/ws/")
    with pytest.raises(ImproperlyConfigured, match="CookieMiddleware"):
        await communicator.connect()


@pytest.fixture
def stored_session(transactional_db: None) -> str:
    """The key of a saved session holding ``color = "blue"``."""
    session = SessionStore()
    session["color"] = "blue"
    session.save()
    assert session.session_key is not None
    return session.session_key


@DB
async def test_session_is_not_loaded_until_used(stored_session: str) -> None:
    recorder = ScopeRecorder()
    communicator = await open_socket(
        SessionMiddlewareStack(recorder), [session_cookie(stored_session)]
    )
    await communicator.disconnect()
    session: SessionBase = recorder.scopes[0]["session"]
    assert session.session_key == stored_session
    assert not session.accessed  # nothing read so far
    assert await sync_to_async(session.get)("color") == "blue"
    assert session.accessed


class SyncSessionConsumer(WebsocketConsumer):
    """``get``: the session's color; ``set X``: store it, save, answer the session key."""

    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        command, _, argument = (text_data or "").partition(" ")
        session = self.scope["session"]
        if command == "get":
            self.send(text_data=str(session.get("color")))
        else:
            session["color"] = argument
            session.save()
            self.send(text_data=session.session_key)


async def save_with_asave(session: SessionBase) -> None:
    await session.asave()


async def save_with_database_sync_to_async(session: SessionBase) -> None:
    await database_sync_to_async(session.save)()


async def save_with_sync_to_async(session: SessionBase) -> None:
    await sync_to_async(session.save)()


SAVERS: dict[str, Callable[[SessionBase], Coroutine[Any, Any, None]]] = {
    "asave": save_with_asave,
    "database_sync_to_async": save_with_database_sync_to_async,
    "sync_to_async": save_with_sync_to_async,
}


class AsyncSessionConsumer(AsyncWebsocketConsumer):
    """The async twin of ``SyncSessionConsumer``, saving the way ``saver`` names."""

    saver = "asave"

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        command, _, argument = (text_data or "").partition(" ")
        session = self.scope["session"]
        if command == "get":
            await self.send(text_data=str(await session.aget("color")))
        else:
            await session.aset("color", argument)
            await SAVERS[self.saver](session)
            await self.send(text_data=session.session_key)


@DB
@pytest.mark.parametrize("consumer", [SyncSessionConsumer, AsyncSessionConsumer])
async def test_consumer_reads_the_session_of_its_cookie(
    stored_session: str, consumer: type[WebsocketConsumer | AsyncWebsocketConsumer]
) -> None:
    app = SessionMiddlewareStack(consumer.as_asgi())
    communicator = await open_socket(app, [session_cookie(stored_session)])
    await communicator.send_to(text_data="get")
    assert await communicator.receive_from() == "blue"
    await communicator.disconnect()


@DB
async def test_sync_consumer_saves_the_session(stored_session: str) -> None:
    app = SessionMiddlewareStack(SyncSessionConsumer.as_asgi())
    communicator = await open_socket(app, [session_cookie(stored_session)])
    await communicator.send_to(text_data="set green")
    assert await communicator.receive_from() == stored_session
    await communicator.disconnect()
    assert await SessionStore(stored_session).aget("color") == "green"


@DB
@pytest.mark.parametrize("saver", sorted(SAVERS))
async def test_async_consumer_saves_the_session(stored_session: str, saver: str) -> None:
    app = SessionMiddlewareStack(AsyncSessionConsumer.as_asgi(saver=saver))
    communicator = await open_socket(app, [session_cookie(stored_session)])
    await communicator.send_to(text_data="set red")
    assert await communicator.receive_from() == stored_session
    await communicator.disconnect()
    assert await SessionStore(stored_session).aget("color") == "red"


@DB
@pytest.mark.parametrize(
    "raw_key",
    [
        b"",
        b"short",
        b"unknownkey0123456789abcdefghijkl",
        b"../../../../etc/passwd",
        b'"unterminated',
        b"x" * 5000,
        b"\xe6\x97\xa5\xff\x00\x01 not latin",
    ],
)
async def test_malformed_or_unknown_session_cookie_gives_an_empty_session(raw_key: bytes) -> None:
    app = SessionMiddlewareStack(SyncSessionConsumer.as_asgi())
    communicator = await open_socket(app, [session_cookie(raw_key)])
    await communicator.send_to(text_data="get")
    assert await communicator.receive_from() == "None"
    await communicator.send_to(text_data="set pink")  # a fresh session can still be saved
    new_key = await communicator.receive_from()
    await communicator.disconnect()
    assert isinstance(new_key, str)
    assert new_key.encode() != raw_key
    assert await SessionStore(new_key).aget("color") == "pink"


@DB
async def test_outer_session_is_kept_by_an_inner_session_middleware(stored_session: str) -> None:
    recorder = ScopeRecorder()
    app = SessionMiddlewareStack(SessionMiddlewareStack(recorder))
    communicator = await open_socket(app, [session_cookie(stored_session)])
    await communicator.disconnect()
    assert recorder.scopes[0]["session"].session_key == stored_session


# -- sessions of HTTP consumers ----------------------------------------------------------------


class VisitCounter(AsyncHttpConsumer):
    """Counts the visits of a session; ``/quiet/`` never touches it, ``/forget/`` flushes it."""

    async def handle(self, body: bytes) -> None:
        session = self.scope["session"]
        if self.scope["path"] == "/quiet/":
            await self.send_response(200, b"quiet")
        elif self.scope["path"] == "/forget/":
            await session.aflush()
            await self.send_response(200, b"forgotten")
        else:
            visits = await session.aget("visits", 0) + 1
            await session.aset("visits", visits)
            await self.send_response(200, str(visits).encode())


def set_cookies(response: dict[str, Any]) -> list[str]:
    return [v.decode() for k, v in response["headers"] if k.lower() == b"set-cookie"]


def session_key_of(response: dict[str, Any]) -> str:
    (cookie,) = set_cookies(response)
    name, _, rest = cookie.partition("=")
    assert name == settings.SESSION_COOKIE_NAME
    return rest.partition(";")[0]


@DB
async def test_http_consumer_session_is_saved_and_its_cookie_set() -> None:
    app = SessionMiddlewareStack(VisitCounter.as_asgi())
    first = await HttpCommunicator(app, "GET", "/count/").get_response()
    assert first["body"] == b"1"
    key = session_key_of(first)
    assert [name for name, _ in first["headers"]] == [b"Set-Cookie"]  # once, and no Vary
    second = await HttpCommunicator(
        app, "GET", "/count/", headers=[session_cookie(key)]
    ).get_response()
    assert second["body"] == b"2"
    assert await SessionStore(key).aget("visits") == 2


@DB
async def test_http_consumer_that_ignores_the_session_sets_no_cookie() -> None:
    app = SessionMiddlewareStack(VisitCounter.as_asgi())
    response = await HttpCommunicator(app, "GET", "/quiet/").get_response()
    assert response["body"] == b"quiet"
    assert set_cookies(response) == []


@DB
async def test_http_consumer_flushing_the_session_deletes_the_cookie(stored_session: str) -> None:
    app = SessionMiddlewareStack(VisitCounter.as_asgi())
    response = await HttpCommunicator(
        app, "GET", "/forget/", headers=[session_cookie(stored_session)]
    ).get_response()
    (cookie,) = set_cookies(response)
    assert cookie.startswith(f'{settings.SESSION_COOKIE_NAME}="";')
    assert "Max-Age=0" in cookie
    assert not await SessionStore().aexists(stored_session)


class CookieSetter(AsyncHttpConsumer):
    """Builds its own response start and sets cookies on it with CookieMiddleware's helpers."""

    async def handle(self, body: bytes) -> None:
        start: dict[str, Any] = {"type": "http.response.start", "status": 200}
        CookieMiddleware.set_cookie(start, "theme", "dark", max_age=60, httponly=True)
        CookieMiddleware.delete_cookie(start, "old")
        await self.send(start)
        await self.send({"type": "http.response.body", "body": b"ok"})


async def test_set_cookie_and_delete_cookie_add_set_cookie_headers() -> None:
    response = await HttpCommunicator(CookieSetter.as_asgi(), "GET", "/").get_response()
    theme, old = set_cookies(response)
    assert theme.startswith("theme=dark;")
    assert "Max-Age=60" in theme
    assert "HttpOnly" in theme
    assert "SameSite=lax" in theme  # written as given, as Channels does
    assert old.startswith('old="";')
    assert "Max-Age=0" in old


def test_set_cookie_keeps_existing_headers_and_refuses_other_messages() -> None:
    start: dict[str, Any] = {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"text/plain")],
    }
    CookieMiddleware.set_cookie(start, "a", "1", secure=True, samesite=None)
    assert start["headers"][0] == (b"content-type", b"text/plain")
    assert start["headers"][1][1].decode().startswith("a=1;")
    assert "Secure" in start["headers"][1][1].decode()
    with pytest.raises(ValueError, match="samesite"):
        CookieMiddleware.set_cookie(start, "a", "1", samesite="sometimes")
    with pytest.raises(ValueError, match=r"http\.response\.body"):
        CookieMiddleware.set_cookie({"type": "http.response.body"}, "a", "1")
    untyped: dict[str, Any] = {}  # Channels lets the message get its type later
    CookieMiddleware.set_cookie(untyped, "a", "1")
    assert untyped == {"headers": [(b"Set-Cookie", b"a=1; Path=/; SameSite=lax")]}
