"""Django authentication over sockets: ``AuthMiddleware``, ``login``, ``logout``, ``get_user``."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.contrib.auth import (
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
    user_logged_in,
    user_logged_out,
)
from django.contrib.auth.models import AnonymousUser, User
from django.contrib.sessions.backends.db import SessionStore
from django.core.exceptions import ImproperlyConfigured, SynchronousOnlyOperation
from django.test import AsyncClient, Client

from channelworks.auth import (
    AuthMiddleware,
    AuthMiddlewareStack,
    UserLazyObject,
    get_user,
    is_resolved,
    login,
    logout,
)
from channelworks.consumers import AsyncWebsocketConsumer, WebsocketConsumer
from channelworks.sessions import SessionMiddlewareStack
from channelworks.testing import ApplicationCommunicator, HttpCommunicator, WebsocketCommunicator
from tests.django.support import (
    AsyncWhoAmI,
    HttpWhoAmI,
    ScopeRecorder,
    SyncWhoAmI,
    describe,
    open_socket,
    session_cookie,
)

DB = pytest.mark.django_db(transaction=True)
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
#: stands for alice's primary key in session data
ALICE = object()


# -- consumers ---------------------------------------------------------------------------------


class MembersOnly(AsyncWebsocketConsumer):
    """A route that requires login: anonymous handshakes are refused."""

    async def connect(self) -> None:
        if self.scope["user"].is_anonymous:
            await self.close()
        else:
            await self.accept()


class AsyncAuthOps(AsyncWebsocketConsumer):
    """``login NAME`` (answers the new session key), ``logout``, ``whoami``, ``get_user``."""

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        command, _, name = (text_data or "").partition(" ")
        if command == "login":
            await login(self.scope, await User.objects.aget(username=name))
            await self.scope["session"].asave()
            await self.send(text_data=self.scope["session"].session_key)
        elif command == "logout":
            await logout(self.scope)
            await self.send(text_data="logged out")
        elif command == "whoami":
            await self.send(text_data=describe(self.scope["user"]))
        else:
            await self.send(text_data=describe(await get_user(self.scope)))


class SyncAuthOps(WebsocketConsumer):
    """The sync twin of ``AsyncAuthOps``: the auth coroutines through ``async_to_sync``."""

    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        command, _, name = (text_data or "").partition(" ")
        if command == "login":
            async_to_sync(login)(self.scope, User.objects.get(username=name))
            self.scope["session"].save()
            self.send(text_data=self.scope["session"].session_key)
        elif command == "logout":
            async_to_sync(logout)(self.scope)
            self.send(text_data="logged out")
        elif command == "whoami":
            self.send(text_data=describe(self.scope["user"]))
        else:
            self.send(text_data=describe(async_to_sync(get_user)(self.scope)))


OPS = [AsyncAuthOps, SyncAuthOps]
WHOAMI = [AsyncWhoAmI, SyncWhoAmI]
Consumer = type[AsyncWebsocketConsumer] | type[WebsocketConsumer]


# -- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture
def alice(transactional_db: None) -> User:
    return User.objects.create_user("alice", password="secret")


@pytest.fixture
def bob(transactional_db: None) -> User:
    return User.objects.create_user("bob", password="secret")


@pytest.fixture
def alice_key(alice: User, client: Client) -> str:
    """The session key of alice logged in through Django's test client (a browser)."""
    client.force_login(alice)
    return str(client.cookies[settings.SESSION_COOKIE_NAME].value)


def stored_session(data: dict[str, Any]) -> str:
    session = SessionStore()
    session.update(data)
    session.save()
    assert session.session_key is not None
    return session.session_key


async def view_says(async_client: AsyncClient, key: str) -> str:
    """What the plain Django view ``whoami/`` answers a browser holding session ``key``."""
    async_client.cookies[settings.SESSION_COOKIE_NAME] = key
    response = await async_client.get("/whoami/")
    return response.content.decode()


async def first_frame(app: Any, headers: list[tuple[bytes, bytes]]) -> str | bytes:
    communicator = await open_socket(app, headers)
    frame = await communicator.receive_from()
    await communicator.disconnect()
    return frame


async def ask(communicator: WebsocketCommunicator, text: str) -> str:
    await communicator.send_to(text_data=text)
    answer = await communicator.receive_from()
    assert isinstance(answer, str)
    return answer


# -- who is connected --------------------------------------------------------------------------


@DB
@pytest.mark.parametrize("consumer", WHOAMI)
async def test_no_cookie_is_anonymous(consumer: Consumer) -> None:
    assert await first_frame(AuthMiddlewareStack(consumer.as_asgi()), []) == "anonymous"


@DB
@pytest.mark.parametrize("consumer", WHOAMI)
async def test_user_logged_in_by_django_is_the_socket_user(
    consumer: Consumer, alice_key: str
) -> None:
    app = AuthMiddlewareStack(consumer.as_asgi())
    assert await first_frame(app, [session_cookie(alice_key)]) == "alice"


@DB
async def test_http_consumer_gets_the_user_too(alice_key: str) -> None:
    app = AuthMiddlewareStack(HttpWhoAmI.as_asgi())
    response = await HttpCommunicator(
        app, "GET", "/", headers=[session_cookie(alice_key)]
    ).get_response()
    assert response["body"] == b"alice"


@DB
@pytest.mark.parametrize(
    "data",
    [
        pytest.param({SESSION_KEY: "987654", BACKEND_SESSION_KEY: MODEL_BACKEND}, id="unknown-id"),
        pytest.param(
            {SESSION_KEY: "not-a-number", BACKEND_SESSION_KEY: MODEL_BACKEND}, id="bad-id"
        ),
        pytest.param({SESSION_KEY: ["1"], BACKEND_SESSION_KEY: MODEL_BACKEND}, id="list-id"),
        pytest.param({SESSION_KEY: ALICE, BACKEND_SESSION_KEY: "no.such.Backend"}, id="backend"),
        pytest.param({SESSION_KEY: ALICE}, id="no-backend"),
        pytest.param({SESSION_KEY: ALICE, BACKEND_SESSION_KEY: MODEL_BACKEND}, id="no-hash"),
        pytest.param(
            {SESSION_KEY: ALICE, BACKEND_SESSION_KEY: MODEL_BACKEND, HASH_SESSION_KEY: "stale"},
            id="stale-hash",
        ),
    ],
)
@pytest.mark.parametrize("consumer", WHOAMI)
async def test_unusable_session_user_is_anonymous(
    alice: User, data: dict[str, Any], consumer: Consumer
) -> None:
    data = {k: str(alice.pk) if v is ALICE else v for k, v in data.items()}
    key = await sync_to_async(stored_session)(data)
    app = AuthMiddlewareStack(consumer.as_asgi())
    assert await first_frame(app, [session_cookie(key)]) == "anonymous"


@DB
async def test_malformed_user_id_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    key = await sync_to_async(stored_session)(
        {SESSION_KEY: "not-a-number", BACKEND_SESSION_KEY: MODEL_BACKEND}
    )
    with caplog.at_level(logging.WARNING, logger="channelworks.auth"):
        assert await first_frame(AuthMiddlewareStack(AsyncWhoAmI.as_asgi()), [session_cookie(key)])
    assert "malformed user id" in caplog.text
    assert key not in caplog.text  # session keys are credentials


@DB
async def test_malformed_session_cookie_is_anonymous() -> None:
    app = AuthMiddlewareStack(AsyncWhoAmI.as_asgi())
    assert await first_frame(app, [session_cookie(b"\xff\x00;;=garbage=")]) == "anonymous"


@DB
@pytest.mark.parametrize("consumer", WHOAMI)
async def test_deleted_user_is_anonymous(consumer: Consumer, alice: User, alice_key: str) -> None:
    await alice.adelete()
    app = AuthMiddlewareStack(consumer.as_asgi())
    assert await first_frame(app, [session_cookie(alice_key)]) == "anonymous"


@DB
async def test_changed_password_logs_the_session_out(
    alice: User, alice_key: str, async_client: AsyncClient
) -> None:
    alice.set_password("changed")
    await alice.asave()
    app = AuthMiddlewareStack(AsyncWhoAmI.as_asgi())
    assert await first_frame(app, [session_cookie(alice_key)]) == "anonymous"
    assert not await SessionStore().aexists(alice_key)  # flushed, as Django's get_user does
    assert await view_says(async_client, alice_key) == "anonymous"


@DB
async def test_route_requiring_login_refuses_anonymous_and_admits_the_user(
    alice_key: str,
) -> None:
    app = AuthMiddlewareStack(MembersOnly.as_asgi())
    refused = WebsocketCommunicator(app, "/ws/", headers=[session_cookie(b"bogus-session-key")])
    assert await refused.connect() == (False, 1000)
    admitted = WebsocketCommunicator(app, "/ws/", headers=[session_cookie(alice_key)])
    connected, _ = await admitted.connect()
    assert connected
    await admitted.disconnect()


async def test_auth_middleware_needs_a_session() -> None:
    communicator = WebsocketCommunicator(AuthMiddleware(AsyncWhoAmI.as_asgi()), "/ws/")
    with pytest.raises(ImproperlyConfigured, match="SessionMiddleware"):
        await communicator.connect()


async def test_other_scope_types_pass_through_untouched() -> None:
    recorder = ScopeRecorder()
    scope = {"type": "channel", "channel": "worker"}
    async with ApplicationCommunicator(AuthMiddleware(recorder), scope) as communicator:
        await communicator.wait()
    assert recorder.scopes == [scope]
    assert recorder.scopes[0] is scope


# -- when the user is loaded -------------------------------------------------------------------


@DB
async def test_user_is_loaded_when_the_socket_opens(alice: User, alice_key: str) -> None:
    recorder = ScopeRecorder()
    communicator = await open_socket(AuthMiddlewareStack(recorder), [session_cookie(alice_key)])
    user = recorder.scopes[0]["user"]
    assert isinstance(user, UserLazyObject)
    assert is_resolved(user)
    await alice.adelete()
    assert user.get_username() == "alice"  # loaded before: no query on the event loop
    assert await get_user(recorder.scopes[0]) == AnonymousUser()  # get_user reads afresh
    await communicator.disconnect()


def lazy_stack(inner: Any) -> Any:
    return SessionMiddlewareStack(AuthMiddleware(inner, lazy=True))


@DB
async def test_lazy_user_is_loaded_on_first_use(alice: User, alice_key: str) -> None:
    recorder = ScopeRecorder()
    communicator = await open_socket(lazy_stack(recorder), [session_cookie(alice_key)])
    scope = recorder.scopes[0]
    assert not is_resolved(scope["user"])
    assert not scope["session"].accessed  # not even the session was read
    await alice.adelete()  # after the socket opened, before the user was first used
    assert describe(await get_user(scope)) == "anonymous"
    assert is_resolved(scope["user"])
    assert describe(scope["user"]) == "anonymous"
    await communicator.disconnect()


@DB
async def test_lazy_user_read_on_the_event_loop_before_loading_is_a_clear_error(
    alice_key: str,
) -> None:
    recorder = ScopeRecorder()
    communicator = await open_socket(lazy_stack(recorder), [session_cookie(alice_key)])
    with pytest.raises(SynchronousOnlyOperation, match=r"await channelworks\.auth\.get_user"):
        recorder.scopes[0]["user"].is_authenticated  # noqa: B018 - the read is the test
    await communicator.disconnect()


@DB
async def test_lazy_user_loads_itself_in_a_sync_consumer(alice_key: str) -> None:
    assert await first_frame(lazy_stack(SyncWhoAmI.as_asgi()), [session_cookie(alice_key)]) == (
        "alice"
    )


# -- login, logout, get_user -------------------------------------------------------------------


@DB
@pytest.mark.parametrize("consumer", OPS)
async def test_login_in_a_consumer_is_seen_by_django_views(
    consumer: Consumer, alice: User, async_client: AsyncClient
) -> None:
    anonymous_key = await sync_to_async(stored_session)({"cart": 3})
    communicator = await open_socket(
        AuthMiddlewareStack(consumer.as_asgi()), [session_cookie(anonymous_key)]
    )
    assert await ask(communicator, "whoami") == "anonymous"
    new_key = await ask(communicator, "login alice")
    assert await ask(communicator, "whoami") == "alice"
    assert await ask(communicator, "get_user") == "alice"
    await communicator.disconnect()

    assert new_key != anonymous_key  # rotated against session fixation
    assert not await SessionStore().aexists(anonymous_key)
    assert await SessionStore(new_key).aget("cart") == 3  # anonymous data kept, as Django does
    assert await view_says(async_client, new_key) == "alice"


@DB
async def test_login_without_a_session_cookie_creates_a_session(
    alice: User, async_client: AsyncClient
) -> None:
    communicator = await open_socket(AuthMiddlewareStack(AsyncAuthOps.as_asgi()), [])
    key = await ask(communicator, "login alice")
    await communicator.disconnect()
    assert await view_says(async_client, key) == "alice"


@DB
async def test_login_as_another_user_flushes_the_previous_session(
    bob: User, alice: User, client: Client
) -> None:
    await sync_to_async(client.force_login)(bob)
    bob_key = client.cookies[settings.SESSION_COOKIE_NAME].value
    bob_session = SessionStore(bob_key)
    await bob_session.aset("bobs_secret", "x")
    await bob_session.asave()
    communicator = await open_socket(
        AuthMiddlewareStack(AsyncAuthOps.as_asgi()), [session_cookie(bob_key)]
    )
    assert await ask(communicator, "whoami") == "bob"
    new_key = await ask(communicator, "login alice")
    await communicator.disconnect()
    assert new_key != bob_key
    assert await SessionStore(new_key).aget("bobs_secret") is None


@DB
async def test_login_again_as_the_same_user_keeps_the_session(alice_key: str) -> None:
    communicator = await open_socket(
        AuthMiddlewareStack(AsyncAuthOps.as_asgi()), [session_cookie(alice_key)]
    )
    assert await ask(communicator, "login alice") == alice_key
    await communicator.disconnect()


@pytest.fixture
def signals() -> Iterator[list[tuple[str, Any, Any]]]:
    received: list[tuple[str, Any, Any]] = []

    def on_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
        received.append(("in", request, user))

    def on_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
        received.append(("out", request, user))

    user_logged_in.connect(on_login)
    user_logged_out.connect(on_logout)
    yield received
    user_logged_in.disconnect(on_login)
    user_logged_out.disconnect(on_logout)


@DB
async def test_login_and_logout_send_djangos_signals(
    alice: User, signals: list[tuple[str, Any, Any]]
) -> None:
    assert alice.last_login is None
    communicator = await open_socket(AuthMiddlewareStack(AsyncAuthOps.as_asgi()), [])
    await ask(communicator, "login alice")
    await ask(communicator, "logout")
    await communicator.disconnect()
    assert signals == [("in", None, alice), ("out", None, alice)]
    assert (await User.objects.aget(pk=alice.pk)).last_login is not None


@DB
@pytest.mark.parametrize("consumer", OPS)
async def test_logout_ends_the_session_for_views_too(
    consumer: Consumer, alice_key: str, async_client: AsyncClient
) -> None:
    communicator = await open_socket(
        AuthMiddlewareStack(consumer.as_asgi()), [session_cookie(alice_key)]
    )
    assert await ask(communicator, "whoami") == "alice"
    assert await ask(communicator, "logout") == "logged out"
    assert await ask(communicator, "whoami") == "anonymous"
    assert await ask(communicator, "get_user") == "anonymous"
    await communicator.disconnect()
    assert not await SessionStore().aexists(alice_key)
    assert await view_says(async_client, alice_key) == "anonymous"


@DB
@pytest.mark.parametrize("consumer", OPS)
async def test_get_user_from_either_flavour(consumer: Consumer, alice_key: str) -> None:
    communicator = await open_socket(
        AuthMiddlewareStack(consumer.as_asgi()), [session_cookie(alice_key)]
    )
    assert await ask(communicator, "get_user") == "alice"
    await communicator.disconnect()


@DB
async def test_login_needs_a_backend_when_several_are_configured(
    alice: User, settings: Any
) -> None:
    settings.AUTHENTICATION_BACKENDS = [
        MODEL_BACKEND,
        "django.contrib.auth.backends.AllowAllUsersModelBackend",
    ]
    scope: dict[str, Any] = {"type": "websocket", "session": SessionStore()}
    with pytest.raises(ValueError, match="backend"):
        await login(scope, alice)
    await login(scope, alice, backend=MODEL_BACKEND)
    assert await scope["session"].aget(BACKEND_SESSION_KEY) == MODEL_BACKEND
    assert await scope["session"].aget(HASH_SESSION_KEY) == alice.get_session_auth_hash()
    assert scope["user"] == alice


@DB
async def test_login_refuses_an_anonymous_user() -> None:
    scope: dict[str, Any] = {"type": "websocket", "session": SessionStore()}
    with pytest.raises(ValueError, match="AnonymousUser"):
        await login(scope, AnonymousUser())  # type: ignore[arg-type]


async def test_auth_functions_need_a_session(alice: User) -> None:
    with pytest.raises(ImproperlyConfigured):
        await get_user({"type": "websocket"})
    with pytest.raises(ImproperlyConfigured):
        await login({"type": "websocket"}, alice)
    with pytest.raises(ImproperlyConfigured):
        await logout({"type": "websocket"})
