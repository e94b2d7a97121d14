"""``channelworks.db.close_old_connections``: what Django's does, without its cost in a thread
that never opened a connection (it runs around every sync handler)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connections

from channelworks import db


def _in_thread(function: Callable[[], Any]) -> Any:
    """``function()`` in a new thread (its own connections, as a pool worker's)."""
    result: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(function())
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


class _Counted:
    """Django's ``close_old_connections``, counting its calls."""

    def __init__(self, django_close: Callable[[], None]) -> None:
        self.django_close = django_close
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1
        self.django_close()


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> _Counted:
    db.close_old_connections()  # finds Django's function and the threads' connection store
    assert db._django_close is not None
    spy = _Counted(db._django_close)
    monkeypatch.setattr(db, "_django_close", spy)
    return spy


def test_a_thread_without_connections_does_not_ask_django(counted: _Counted) -> None:
    _in_thread(db.close_old_connections)
    assert counted.calls == 0


@pytest.mark.django_db(transaction=True)
def test_a_thread_with_a_connection_has_its_obsolete_one_closed(counted: _Counted) -> None:
    def use_expire_and_close() -> bool:
        connection = connections["default"]
        connection.ensure_connection()
        try:
            connection.close_at = time.monotonic() - 1  # as if CONN_MAX_AGE had passed
            db.close_old_connections()
            return connection.connection is None
        finally:
            connection.close()

    assert _in_thread(use_expire_and_close)
    assert counted.calls == 1


@pytest.mark.django_db(transaction=True)
def test_a_thread_with_a_usable_connection_keeps_it(counted: _Counted) -> None:
    def use_and_close() -> bool:
        connection = connections["default"]
        connection.ensure_connection()
        try:
            connection.close_at = None  # persistent (CONN_MAX_AGE=None)
            db.close_old_connections()
            return connection.connection is not None
        finally:
            connection.close()

    assert _in_thread(use_and_close)
    assert counted.calls == 1


def test_without_configured_settings_it_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db, "_django_close", None)
    monkeypatch.setattr(db, "_settings_state", {})  # as before settings.configure()
    db.close_old_connections()
    assert db._django_close is None  # Django's function not looked up: nothing to close
    monkeypatch.undo()
    db.close_old_connections()
    assert db._django_close is not None
