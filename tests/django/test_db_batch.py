"""``channelworks.db_batch.Batched``: calls that arrive while one waits for the database
thread share its hop, and still each get their own result, error and cancellation."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

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


# -- the batch of AuthMiddleware: sessions loaded with one query --------------------------------


def logged_in(user: Any) -> str:
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    assert session.session_key is not None
    return session.session_key


@pytest.mark.django_db(transaction=True)
def test_sessions_of_a_batch_load_in_one_query_and_each_user_is_its_own(
    django_assert_num_queries: Any,
) -> None:
    from django.contrib.auth.models import User
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    from channelworks.auth import UserLazyObject, _load_sessions, _resolve

    alice = User.objects.create_user("alice", password="x")
    bob = User.objects.create_user("bob", password="y")
    keys = [logged_in(alice), logged_in(bob), logged_in(bob)]
    Session.objects.filter(session_key=keys[2]).update(expire_date=timezone.now())  # expired
    users = [UserLazyObject(SessionStore(key)) for key in [*keys, "not-a-known-session-key"]]
    with django_assert_num_queries(1):
        _load_sessions([(user,) for user in users])
    for user in users:
        _resolve(user)
    assert [user.username for user in users[:2]] == ["alice", "bob"]
    assert users[2].is_anonymous  # expired: loaded on its own, as Django does, and empty
    assert users[3].is_anonymous
