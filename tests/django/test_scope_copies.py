"""The session and auth middlewares add their keys to a copy of the scope and keep no reference
to it: their frames last as long as the connection, and a copy kept by each would too."""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User

from channelworks.auth import AuthMiddlewareStack, TokenAuthMiddleware
from channelworks.sessions import SessionMiddlewareStack
from channelworks.testing import WebsocketCommunicator
from tests.django.support import ScopeRecorder, session_cookie

PATH = "/ws/scope-copies/"


def live_copies() -> list[dict[str, Any]]:
    gc.collect()
    return [o for o in gc.get_objects() if type(o) is dict and o.get("path") == PATH]


def logged_in_key() -> str:
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    user = User.objects.create_user("copies", password="x")
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    assert session.session_key is not None
    return session.session_key


def token_stack(inner: Any) -> Any:
    return AuthMiddlewareStack(TokenAuthMiddleware(inner, resolve_token=lambda token: None))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "stack",
    [SessionMiddlewareStack, AuthMiddlewareStack, token_stack],
    ids=["sessions", "auth", "auth+token"],
)
async def test_only_the_inner_applications_copy_of_the_scope_stays_alive(
    stack: Callable[[Any], Any],
) -> None:
    key = await sync_to_async(logged_in_key)()
    recorder = ScopeRecorder()
    communicator = WebsocketCommunicator(stack(recorder), PATH, headers=[session_cookie(key)])
    connected, _ = await communicator.connect()
    assert connected
    try:
        (inner_scope,) = recorder.scopes
        assert "session" in inner_scope
        copies = live_copies()
        assert any(copy is inner_scope for copy in copies)
        assert any(copy is communicator.scope for copy in copies)
        assert len(copies) == 2  # the caller's scope and the inner application's: no other
    finally:
        await communicator.disconnect()
