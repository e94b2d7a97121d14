"""Channels' sessions and authentication as its documentation describes them.

Written from Channels' "Sessions" and "Authentication" documentation: ``login(scope, user)``
and ``logout(scope)`` need ``SessionMiddleware`` (a ``ValueError`` saying so), ``login`` takes
the user from the scope when none is passed; a logout with nobody logged in tells nobody; on
HTTP, ``SessionMiddleware`` saves a session that changed and sets its cookie once, with the
``SESSION_COOKIE_SAMESITE`` Django accepts; ``CookieMiddleware.set_cookie`` writes a
``Set-Cookie`` header on the message it is given.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import SESSION_KEY, get_user_model, user_logged_in, user_logged_out
from django.contrib.sessions.backends.db import SessionStore
from django.core.exceptions import SuspiciousOperation
from django.test import override_settings

DB = pytest.mark.django_db(transaction=True)


@pytest.fixture
def auth() -> ModuleType:
    return importlib.import_module("channels.auth")


@pytest.fixture
def sessions() -> ModuleType:
    return importlib.import_module("channels.sessions")


@pytest.fixture
def signals() -> Iterator[list[str]]:
    sent: list[str] = []

    def logged_in(**kwargs: Any) -> None:
        sent.append("in")

    def logged_out(**kwargs: Any) -> None:
        sent.append("out")

    user_logged_in.connect(logged_in)
    user_logged_out.connect(logged_out)
    yield sent
    user_logged_in.disconnect(logged_in)
    user_logged_out.disconnect(logged_out)


async def test_login_and_logout_need_a_session(auth: ModuleType) -> None:
    message = "Cannot find session in scope. You should wrap your consumer in SessionMiddleware"
    with pytest.raises(ValueError, match=message):
        await auth.login({}, None)
    with pytest.raises(ValueError, match=message):
        await auth.logout({})


@DB
async def test_login_takes_the_scopes_user(auth: ModuleType, signals: list[str]) -> None:
    session = SessionStore()
    await session.acreate()
    with pytest.raises(
        ValueError, match="User must be passed as an argument or must be present in the scope"
    ):
        await auth.login({"session": session}, None)
    bob = await get_user_model().objects.acreate(username="bob")
    scope = {"session": session, "user": bob}
    await auth.login(scope, None)
    assert session[SESSION_KEY] == str(bob.pk)
    assert signals == ["in"]


@DB
async def test_logout_with_nobody_logged_in_tells_nobody(
    auth: ModuleType, signals: list[str]
) -> None:
    session = SessionStore()
    await session.acreate()
    scope: dict[str, Any] = {"session": session}
    await auth.logout(scope)
    assert signals == []
    assert "user" not in scope


def session_app(sessions: ModuleType, **session_data: Any) -> Any:
    consumer = importlib.import_module("channels.consumer")

    class Saves(consumer.AsyncConsumer):  # type: ignore[misc,name-defined]
        async def http_request(self, event: dict[str, Any]) -> None:
            for key, value in session_data.items():
                await self.scope["session"].aset(key, value)
            await self.send({"type": "http.response.start", "status": 200, "headers": []})
            await self.send({"type": "http.response.body", "body": b"ok"})

    return sessions.SessionMiddlewareStack(Saves.as_asgi())


async def get(app: Any) -> dict[str, Any]:
    testing = importlib.import_module("channels.testing")
    response: dict[str, Any] = await testing.HttpCommunicator(app, "GET", "/").get_response()
    return response


@DB
@pytest.mark.parametrize("samesite", ["Lax", "Strict", "None"])
async def test_a_changed_session_sets_its_cookie_once(sessions: ModuleType, samesite: str) -> None:
    with override_settings(SESSION_COOKIE_SAMESITE=samesite):
        response = await get(session_app(sessions, colour="blue"))
    ((name, value),) = response["headers"]
    assert name == b"Set-Cookie"
    cookie = value.decode()
    assert cookie.startswith("sessionid=")
    for attribute in ("expires=", "HttpOnly", "Max-Age=", "Path=/"):
        assert attribute in cookie
    assert re.search(r"SameSite=(\w+)", cookie).group(1) == samesite  # type: ignore[union-attr]


@DB
async def test_a_samesite_django_refuses_is_an_error(sessions: ModuleType) -> None:
    # Channels raises AssertionError; ours is a ValueError too, as Django's
    refused = pytest.raises(AssertionError, match="samesite")
    with override_settings(SESSION_COOKIE_SAMESITE="Hello"), refused:
        await get(session_app(sessions, colour="blue"))


@DB
async def test_a_session_deleted_meanwhile_is_a_suspicious_operation(
    sessions: ModuleType,
) -> None:
    consumer = importlib.import_module("channels.consumer")

    class LoggedOutElsewhere(consumer.AsyncConsumer):  # type: ignore[misc,name-defined]
        async def http_request(self, event: dict[str, Any]) -> None:
            session = self.scope["session"]
            await session.aset("colour", "blue")
            await session.asave()
            await sync_to_async(SessionStore(session_key=session.session_key).flush)()
            await session.aset("colour", "red")
            await self.send({"type": "http.response.start", "status": 200, "headers": []})

    with pytest.raises(SuspiciousOperation, match="deleted before the request completed"):
        await get(sessions.SessionMiddlewareStack(LoggedOutElsewhere.as_asgi()))


def test_set_cookie_on_channels_message_shapes(sessions: ModuleType) -> None:
    message: dict[str, Any] = {}
    sessions.CookieMiddleware.set_cookie(message, "Testing-Key", "testing-value")
    assert message == {
        "headers": [(b"Set-Cookie", b"Testing-Key=testing-value; Path=/; SameSite=lax")]
    }
    start: dict[str, Any] = {"type": "http.response.start", "status": 200, "headers": []}
    sessions.CookieMiddleware.set_cookie(start, "k", "v", samesite="Strict")
    assert start["headers"] == [(b"Set-Cookie", b"k=v; Path=/; SameSite=Strict")]
    with pytest.raises(AssertionError, match="samesite"):
        sessions.CookieMiddleware.set_cookie({}, "k", "v", samesite="sometimes")
