"""``TokenAuthMiddleware``: a user from a bearer token or ``?token=``, for non-browser clients."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured

from channelworks.auth import AuthMiddlewareStack, TokenAuthMiddleware, token_from_scope
from channelworks.testing import ApplicationCommunicator, HttpCommunicator, WebsocketCommunicator
from tests.django.support import (
    AsyncWhoAmI,
    HttpWhoAmI,
    ScopeRecorder,
    SyncWhoAmI,
    session_cookie,
)

DB = pytest.mark.django_db(transaction=True)

#: the project's token store in these tests
TOKENS = {"alice-token": "alice", "bob-token": "bob", "a+b/c=": "alice"}


def sync_resolver(token: str) -> User | None:
    name = TOKENS.get(token)
    return None if name is None else User.objects.filter(username=name).first()


async def async_resolver(token: str) -> User | None:
    name = TOKENS.get(token)
    return None if name is None else await User.objects.filter(username=name).afirst()


class CallableResolver:
    """A resolver object with an ``async def __call__``."""

    async def __call__(self, token: str) -> User | None:
        return await async_resolver(token)


def failing_resolver(token: str) -> User | None:
    raise RuntimeError("the token store is down")


def confused_resolver(token: str) -> Any:
    return "alice"  # a name, not a user


RESOLVERS = [sync_resolver, async_resolver, CallableResolver()]


@pytest.fixture
def users(transactional_db: None) -> None:
    User.objects.create_user("alice")
    User.objects.create_user("bob")


async def who(
    app: Any, path: str = "/ws/", headers: list[tuple[bytes, bytes]] | None = None
) -> str:
    communicator = WebsocketCommunicator(app, path, headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    frame = await communicator.receive_from()
    await communicator.disconnect()
    assert isinstance(frame, str)
    return frame


def bearer(token: str) -> tuple[bytes, bytes]:
    return b"authorization", f"Bearer {token}".encode()


# -- where the token comes from ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "query", "expected"),
    [
        ([], b"", None),
        ([], b"token=abc", "abc"),
        ([], b"other=1&token=a%2Bb%2Fc%3D", "a+b/c="),
        ([], b"token=", None),
        ([bearer("xyz")], b"", "xyz"),
        ([(b"Authorization", b"bearer   xyz  ")], b"", "xyz"),
        ([bearer("xyz")], b"token=abc", "xyz"),  # the header wins
        ([(b"authorization", b"Basic dXNlcjpwdw==")], b"token=abc", "abc"),
        ([(b"authorization", b"Bearer")], b"", None),
        ([(b"authorization", b"Bearer ")], b"token=abc", "abc"),
        ([(b"authorization", b"\xff\xfe")], b"token=%ff", "\ufffd"),
    ],
)
def test_token_from_scope(
    headers: list[tuple[bytes, bytes]], query: bytes, expected: str | None
) -> None:
    assert token_from_scope({"headers": headers, "query_string": query}) == expected


def test_token_from_scope_with_another_query_parameter() -> None:
    scope = {"headers": [], "query_string": b"token=no&access_token=yes"}
    assert token_from_scope(scope, "access_token") == "yes"


# -- resolving it ------------------------------------------------------------------------------


@DB
@pytest.mark.usefixtures("users")
@pytest.mark.parametrize("resolver", RESOLVERS)
async def test_token_in_the_query_string(resolver: Any) -> None:
    app = TokenAuthMiddleware(AsyncWhoAmI.as_asgi(), resolve_token=resolver)
    assert await who(app, "/ws/?token=alice-token") == "alice"


@DB
@pytest.mark.usefixtures("users")
@pytest.mark.parametrize("resolver", RESOLVERS)
async def test_token_in_the_authorization_header(resolver: Any) -> None:
    app = TokenAuthMiddleware(SyncWhoAmI.as_asgi(), resolve_token=resolver)
    assert await who(app, headers=[bearer("bob-token")]) == "bob"


@DB
@pytest.mark.usefixtures("users")
async def test_percent_encoded_token() -> None:
    app = TokenAuthMiddleware(AsyncWhoAmI.as_asgi(), resolve_token=sync_resolver)
    assert await who(app, "/ws/?token=a%2Bb%2Fc%3D") == "alice"


@DB
@pytest.mark.usefixtures("users")
async def test_renamed_query_parameter() -> None:
    app = TokenAuthMiddleware(
        AsyncWhoAmI.as_asgi(), resolve_token=sync_resolver, query_param="access_token"
    )
    assert await who(app, "/ws/?access_token=alice-token") == "alice"
    assert await who(app, "/ws/?token=alice-token") == "anonymous"


@DB
@pytest.mark.usefixtures("users")
@pytest.mark.parametrize("resolver", RESOLVERS)
@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/ws/", []),
        ("/ws/?token=forged", []),
        ("/ws/", [bearer("forged")]),
        ("/ws/?token=alice-token", [bearer("forged")]),  # a bad header never falls back
        ("/ws/", [(b"authorization", b"Basic YWxpY2UtdG9rZW4=")]),
    ],
)
async def test_missing_or_invalid_token_is_anonymous(
    resolver: Any, path: str, headers: list[tuple[bytes, bytes]]
) -> None:
    app = TokenAuthMiddleware(AsyncWhoAmI.as_asgi(), resolve_token=resolver)
    assert await who(app, path, headers) == "anonymous"


@DB
async def test_failing_resolver_is_anonymous_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    app = TokenAuthMiddleware(AsyncWhoAmI.as_asgi(), resolve_token=failing_resolver)
    with caplog.at_level(logging.WARNING, logger="channelworks.auth"):
        assert await who(app, "/ws/?token=alice-token") == "anonymous"
    assert "failing_resolver failed" in caplog.text
    assert "the token store is down" in caplog.text


async def test_resolver_returning_something_else_than_a_user_is_an_error() -> None:
    app = TokenAuthMiddleware(AsyncWhoAmI.as_asgi(), resolve_token=confused_resolver)
    communicator = WebsocketCommunicator(app, "/ws/?token=alice-token")
    with pytest.raises(TypeError, match="confused_resolver must return a user or None"):
        await communicator.connect()


@DB
@pytest.mark.usefixtures("users")
async def test_http_scopes_are_authenticated_too() -> None:
    app = TokenAuthMiddleware(HttpWhoAmI.as_asgi(), resolve_token=async_resolver)
    response = await HttpCommunicator(
        app, "GET", "/", headers=[bearer("alice-token")]
    ).get_response()
    assert response["body"] == b"alice"


async def test_other_scope_types_pass_through_untouched() -> None:
    recorder = ScopeRecorder()
    scope = {"type": "channel", "channel": "worker", "query_string": b"token=alice-token"}
    app = TokenAuthMiddleware(recorder, resolve_token=failing_resolver)
    async with ApplicationCommunicator(app, scope) as communicator:
        await communicator.wait()
    assert recorder.scopes[0] is scope


# -- with session authentication ---------------------------------------------------------------


@pytest.fixture
def alice_key(users: None, client: Any) -> str:
    client.force_login(User.objects.get(username="alice"))
    return str(client.cookies["sessionid"].value)


@DB
@pytest.mark.parametrize(
    ("path", "headers", "expected"),
    [
        ("/ws/", [], "alice"),  # no token: the session's user is kept
        ("/ws/?token=bob-token", [], "bob"),
        ("/ws/?token=forged", [], "anonymous"),
        ("/ws/", [bearer("forged")], "anonymous"),
    ],
)
async def test_inside_auth_middleware_stack(
    alice_key: str, path: str, headers: list[tuple[bytes, bytes]], expected: str
) -> None:
    app = AuthMiddlewareStack(TokenAuthMiddleware(AsyncWhoAmI.as_asgi(), sync_resolver))
    assert await who(app, path, [session_cookie(alice_key), *headers]) == expected


# -- configuration -----------------------------------------------------------------------------


@DB
@pytest.mark.usefixtures("users")
async def test_resolver_named_by_the_setting(settings: Any) -> None:
    settings.CHANNELWORKS_TOKEN_RESOLVER = f"{__name__}.async_resolver"
    app = TokenAuthMiddleware(AsyncWhoAmI.as_asgi())
    assert app.resolve_token is async_resolver
    assert await who(app, "/ws/?token=alice-token") == "alice"


@DB
@pytest.mark.usefixtures("users")
async def test_resolver_given_as_a_dotted_path() -> None:
    app = TokenAuthMiddleware(AsyncWhoAmI.as_asgi(), f"{__name__}.sync_resolver")
    assert await who(app, headers=[bearer("alice-token")]) == "alice"


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (None, "CHANNELWORKS_TOKEN_RESOLVER"),
        ("tests.django.no_such_module.resolver", "Cannot import token resolver"),
        (f"{__name__}.TOKENS", "is not callable"),
    ],
)
def test_unusable_resolver_setting_fails_at_construction(
    settings: Any, setting: str | None, message: str
) -> None:
    if setting is None:
        del settings.CHANNELWORKS_TOKEN_RESOLVER
    else:
        settings.CHANNELWORKS_TOKEN_RESOLVER = setting
    with pytest.raises(ImproperlyConfigured, match=message):
        TokenAuthMiddleware(AsyncWhoAmI.as_asgi())
