"""``channelworks.db_batch.Batched``: calls that arrive while one waits for the database
thread share its hop, and still each get their own result, error and cancellation."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from channelworks.db_batch import Batched


class Recorder:
    def __init__(self) -> None:
        self.gate = threading.Event()

    def call(self, number: int) -> int:
        if number == 0:  # the first call holds the thread until the others are queued
            self.gate.wait(5)
        if number == 3:
            raise ValueError("three is refused")
        return number * 10


async def test_calls_queued_behind_one_share_the_next_hop_with_their_own_outcomes() -> None:
    recorder = Recorder()
    threads: list[str] = []

    def call(number: int) -> int:
        threads.append(threading.current_thread().name)
        return recorder.call(number)

    batched = Batched(call)
    hops: list[int] = []  # calls per hop
    run = batched._run

    def counted(batch: Any) -> None:
        hops.append(len(batch.calls))
        run(batch)

    batched._run = counted  # type: ignore[method-assign]
    first = asyncio.ensure_future(batched(0))
    await asyncio.sleep(0.05)  # the first hop has started and holds the thread
    others = [asyncio.ensure_future(batched(number)) for number in (1, 2, 3, 4)]
    await asyncio.sleep(0.05)
    recorder.gate.set()
    assert await first == 0
    assert [await call for call in others[:2]] == [10, 20]
    with pytest.raises(ValueError, match="three is refused"):
        await others[2]
    assert await others[3] == 40  # the error of one call stays with its caller
    assert hops == [1, 4]  # the four queued behind the first went in one hop
    assert len(threads) == 5
    assert len(set(threads)) == 1  # Django's database thread


async def test_what_before_returns_is_passed_to_each_call_of_the_hop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = Recorder()
    fetches: list[list[tuple[Any, ...]]] = []
    fail = False

    def before(calls: list[tuple[Any, ...]]) -> str:
        fetches.append(calls)
        if fail:
            raise RuntimeError("the fetch failed")
        return f"fetched {len(calls)}"

    def call(number: int, fetched: str | None) -> tuple[int, str | None]:
        return recorder.call(number), fetched

    batched = Batched(call, before=before)
    first = asyncio.ensure_future(batched(0))
    await asyncio.sleep(0.05)  # alone in its hop: nothing to fetch together
    others = [asyncio.ensure_future(batched(number)) for number in (1, 2)]
    await asyncio.sleep(0.05)
    recorder.gate.set()
    assert await first == (0, None)
    assert [await call for call in others] == [(10, "fetched 2"), (20, "fetched 2")]
    assert fetches == [[(1,), (2,)]]

    fail = True
    recorder.gate.clear()
    first = asyncio.ensure_future(batched(0))
    await asyncio.sleep(0.05)
    others = [asyncio.ensure_future(batched(number)) for number in (1, 2)]
    await asyncio.sleep(0.05)
    with caplog.at_level(logging.ERROR, logger="channelworks.db"):
        recorder.gate.set()
        assert await first == (0, None)
        assert [await call for call in others] == [(10, None), (20, None)]  # made anyway
    assert "Fetching for 2 calls at once failed" in caplog.text


async def test_a_cancelled_caller_leaves_the_others_their_results() -> None:
    recorder = Recorder()
    batched = Batched(recorder.call)
    first = asyncio.ensure_future(batched(0))
    await asyncio.sleep(0.05)
    second = asyncio.ensure_future(batched(1))
    third = asyncio.ensure_future(batched(2))
    await asyncio.sleep(0.01)
    second.cancel()
    recorder.gate.set()
    assert await first == 0
    assert await third == 20
    with pytest.raises(asyncio.CancelledError):
        await second


# -- the batch of AuthMiddleware: sessions with one query, users with one more -----------------

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
ALL_USERS_BACKEND = "django.contrib.auth.backends.AllowAllUsersModelBackend"
OWN_BACKEND = "tests.django.test_db_batch.OwnGetUserBackend"
OLD_SECRET = "channelworks-test-suite-an-old-secret"


class OwnGetUserBackend:
    """A backend with a ``get_user`` of its own: the batch must leave it to Django."""

    asked: list[Any] = []

    def get_user(self, user_id: Any) -> Any:
        from django.contrib.auth.models import User

        self.asked.append(user_id)
        return User.objects.filter(pk=user_id).first()


def stored(data: dict[str, Any], *, expired: bool = False) -> str:
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    session = SessionStore()
    session.update(data)
    session.create()
    assert session.session_key is not None
    if expired:
        Session.objects.filter(session_key=session.session_key).update(expire_date=timezone.now())
    return session.session_key


def logged_in(user: Any, backend: str = MODEL_BACKEND, /, **changes: object) -> str:
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    data = {
        SESSION_KEY: str(user.pk),
        BACKEND_SESSION_KEY: backend,
        HASH_SESSION_KEY: user.get_session_auth_hash(),
    }
    data.update(changes)
    return stored({key: value for key, value in data.items() if value is not None})


def storm_cases() -> dict[str, str]:
    """A session key per case a handshake's session can be in, made afresh (flushes delete)."""
    from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import User

    User.objects.all().delete()
    alice: Any = User.objects.create_user("alice", password="a")
    bob = User.objects.create_user("bob", password="b", is_active=False)
    gone = User.objects.create_user("gone", password="g")
    gone_key = logged_in(gone)
    gone.delete()
    return {
        "alice": logged_in(alice),
        "alice-again": logged_in(alice),
        "inactive": logged_in(bob),
        "inactive-allowed": logged_in(bob, ALL_USERS_BACKEND),
        "own-backend": logged_in(alice, OWN_BACKEND),
        "deleted-user": gone_key,
        "stale-hash": logged_in(alice, **{HASH_SESSION_KEY: "stale"}),
        "no-hash": logged_in(alice, **{HASH_SESSION_KEY: None}),
        "old-secret-hash": logged_in(
            alice, **{HASH_SESSION_KEY: alice._get_session_auth_hash(secret=OLD_SECRET)}
        ),
        "backend-gone": logged_in(alice, "no.such.Backend"),
        "no-backend": stored({SESSION_KEY: str(alice.pk)}),
        "malformed-id": logged_in(alice, **{SESSION_KEY: "not-a-number"}),
        "list-id": logged_in(alice, **{SESSION_KEY: ["1"]}),
        "no-user": stored({"cart": [1, 2]}),
        "expired": stored({SESSION_KEY: str(alice.pk)}, expired=True),
        "unknown-key": "k" * 32,
    }


def outcome(user: Any, session: Any, key: str) -> tuple[Any, ...]:
    """What a handshake ends up with: its user, and its session as it stays in the store."""
    from django.contrib.auth import HASH_SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    name = user.get_username() if user.is_authenticated else "anonymous"
    renewed = (
        user.is_authenticated and session.get(HASH_SESSION_KEY) == user.get_session_auth_hash()
    )
    return (
        name,
        type(user).__name__,
        session.session_key == key,  # a fallback hash cycles the key; a flush drops it
        SessionStore().exists(key),  # a failed check flushes (deletes) the session
        renewed,
        sorted(session.keys()) if session.session_key == key else None,
    )


@pytest.mark.django_db
def test_a_batch_decides_each_session_as_djangos_get_user_does(settings: Any) -> None:
    from django.contrib.auth import get_user as django_get_user
    from django.contrib.sessions.backends.db import SessionStore
    from django.http import HttpRequest

    from channelworks.auth import UserLazyObject, _fetch_for_batch, _resolve

    settings.AUTHENTICATION_BACKENDS = [MODEL_BACKEND, ALL_USERS_BACKEND, OWN_BACKEND]
    settings.SECRET_KEY_FALLBACKS = [OLD_SECRET]
    expected = {}
    for case, key in storm_cases().items():  # one by one, through Django itself
        session = SessionStore(key)
        request = HttpRequest()
        request.session = session
        try:
            user = django_get_user(request)
        except ValidationError:
            from django.contrib.auth.models import AnonymousUser

            user = AnonymousUser()  # what AuthMiddleware makes of it (and logs)
        expected[case] = outcome(user, session, key)

    OwnGetUserBackend.asked.clear()
    cases = storm_cases()
    users = {case: UserLazyObject(SessionStore(key)) for case, key in cases.items()}
    fetched = _fetch_for_batch([(lazy,) for lazy in users.values()])
    for lazy in users.values():
        _resolve(lazy, fetched)
    got = {
        case: outcome(lazy._wrapped, lazy.__dict__["_session"], cases[case])
        for case, lazy in users.items()
    }
    assert got == expected
    assert got["alice"][0] == "alice"  # the cases do tell apart
    assert got["old-secret-hash"][:5] == ("alice", "User", False, False, True)
    assert got["stale-hash"][:4] == ("anonymous", "AnonymousUser", False, False)
    assert got["inactive-allowed"][0] == "bob"
    assert len(OwnGetUserBackend.asked) == 1  # its own get_user was asked, not the batch's
    assert users["alice"]._wrapped is not users["alice-again"]._wrapped  # each its own


@pytest.mark.django_db
def test_a_batch_reads_its_sessions_with_one_query_and_its_users_with_one_more(
    django_assert_num_queries: Any,
) -> None:
    from django.contrib.auth.models import User
    from django.contrib.sessions.backends.db import SessionStore

    from channelworks.auth import UserLazyObject, _fetch_for_batch, _resolve

    people = [User.objects.create_user(f"user-{n}", password="x") for n in range(5)]
    keys = [logged_in(user) for user in people] + [logged_in(people[0])]
    keys += [stored({"cart": 1}), stored({"cart": 2}, expired=True), "u" * 32]
    users = [UserLazyObject(SessionStore(key)) for key in keys]
    with django_assert_num_queries(2):
        fetched = _fetch_for_batch([(user,) for user in users])
        for user in users:
            _resolve(user, fetched)
    names = [user.username if user.is_authenticated else None for user in users]
    assert names == [f"user-{n}" for n in range(5)] + ["user-0", None, None, None]
    assert users[0]._wrapped == users[5]._wrapped
    assert users[0]._wrapped is not users[5]._wrapped
    assert users[7].__dict__["_session"].session_key is None  # as Django's load leaves it


@pytest.mark.django_db(transaction=True)
async def test_handshakes_queued_together_each_get_their_own_user() -> None:
    from asgiref.sync import sync_to_async
    from django.contrib.auth.models import User

    from channelworks.auth import AuthMiddlewareStack
    from tests.django.support import AsyncWhoAmI, open_socket, session_cookie

    def make() -> list[str]:
        people = [User.objects.create_user(f"user-{n}", password="x") for n in range(4)]
        return [logged_in(user) for user in people]

    keys = await sync_to_async(make)()
    app = AuthMiddlewareStack(AsyncWhoAmI.as_asgi())
    gate = threading.Event()
    held = asyncio.ensure_future(sync_to_async(gate.wait)(5))  # holds the database thread
    await asyncio.sleep(0.05)
    opening = [
        asyncio.ensure_future(open_socket(app, [session_cookie(key)])) for key in [*keys, "u" * 32]
    ]
    await asyncio.sleep(0.1)  # all five wait for the thread: one hop
    gate.set()
    await held
    sockets = [await socket for socket in opening]
    said = [await socket.receive_from() for socket in sockets]
    for socket in sockets:
        await socket.disconnect()
    assert said == ["user-0", "user-1", "user-2", "user-3", "anonymous"]


@pytest.mark.django_db
def test_a_batch_over_the_databases_parameter_limit_reads_its_sessions_in_parts(
    monkeypatch: pytest.MonkeyPatch, django_assert_num_queries: Any
) -> None:
    from django.contrib.auth.models import User
    from django.contrib.sessions.backends.db import SessionStore

    from channelworks import auth
    from channelworks.auth import UserLazyObject, _fetch_for_batch, _resolve

    monkeypatch.setattr(auth, "_parameter_limit", lambda alias: 2)
    people = [User.objects.create_user(f"user-{n}", password="x") for n in range(5)]
    users = [UserLazyObject(SessionStore(logged_in(user))) for user in people]
    with django_assert_num_queries(3 + 1):  # sessions 2 + 2 + 1, then the users
        fetched = _fetch_for_batch([(user,) for user in users])
        for user in users:
            _resolve(user, fetched)
    assert [user.username for user in users] == [f"user-{n}" for n in range(5)]


@pytest.mark.django_db
def test_a_session_that_fails_to_load_in_a_batch_fails_its_own_handshake_only() -> None:
    from django.contrib.auth.models import User
    from django.contrib.sessions.backends.db import SessionStore

    from channelworks.auth import UserLazyObject, _fetch_for_batch, _resolve

    class Broken(SessionStore):  # another engine, whose store is down
        def load(self) -> dict[str, Any]:
            raise ConnectionError("session store down")

    people = [User.objects.create_user(f"user-{n}", password="x") for n in range(2)]
    keys = [logged_in(user) for user in people]
    users = [UserLazyObject(SessionStore(keys[0])), UserLazyObject(Broken(keys[1]))]
    fetched = _fetch_for_batch([(user,) for user in users])
    _resolve(users[0], fetched)
    assert users[0].username == "user-0"
    with pytest.raises(ConnectionError, match="session store down"):
        _resolve(users[1], fetched)
