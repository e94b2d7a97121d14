"""Fixtures of the demo's tests: users, their sessions, a fresh channel layer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import override_settings

from channelworks.layers import InMemoryChannelLayer
from tests.demo.support import session_of

#: the demo's own middleware (``channelworks.demo.settings``), after the suite's
CURSOR_MIDDLEWARE = "channelworks.demo.social.middleware.NotificationCursorMiddleware"


@pytest.fixture(autouse=True)
def _layer(channel_layer: InMemoryChannelLayer) -> InMemoryChannelLayer:
    """Every demo test talks through a fresh in-memory layer."""
    return channel_layer


@pytest.fixture(autouse=True)
def _demo_settings(tmp_path: Path) -> Iterator[None]:
    """The demo's login pages and middleware; uploads go to the test's own folder."""
    with override_settings(
        MEDIA_ROOT=str(tmp_path / "media"),
        LOGIN_URL="login",
        LOGIN_REDIRECT_URL="chat:rooms",
        MIDDLEWARE=[*settings.MIDDLEWARE, CURSOR_MIDDLEWARE],
    ):
        yield


@pytest.fixture
def alice(django_user_model: type[User]) -> User:
    return django_user_model.objects.create_user("alice", password="pw")


@pytest.fixture
def bob(django_user_model: type[User]) -> User:
    return django_user_model.objects.create_user("bob", password="pw")


@pytest.fixture
def carol(django_user_model: type[User]) -> User:
    return django_user_model.objects.create_user("carol", password="pw")


@pytest.fixture
def alice_session(alice: User) -> str:
    return session_of(alice)


@pytest.fixture
def bob_session(bob: User) -> str:
    return session_of(bob)


@pytest.fixture
def carol_session(carol: User) -> str:
    return session_of(carol)
