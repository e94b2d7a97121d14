"""Sockets a session authenticated close (4401) when the session ends: a logout (in a view, in
a consumer, in another process), a flush, a password change (channelworks.session_sockets)."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client

from channelworks.auth import AuthMiddlewareStack, login, logout
from channelworks.consumers import AsyncWebsocketConsumer, WebsocketConsumer
from channelworks.layers import channel_layers, get_channel_layer
from channelworks.layers.memory import InMemoryChannelLayer
from channelworks.session_sockets import (
    MESSAGE_TYPE,
    SESSION_ENDED,
    session_group,
    user_group,
)
from channelworks.testing import WebsocketCommunicator
from tests.django.support import describe, session_cookie
from tests.layers.backends import REDIS_URL, redis_reachable, require_service

DB = pytest.mark.django_db(transaction=True)
MEMORY = {"default": {"BACKEND": "channelworks.layers.InMemoryChannelLayer"}}
#: seconds a socket may take to see its close; far more than it needs
PATIENCE = 5


class Echo(AsyncWebsocketConsumer):
    """Says who it is on each frame; ``logout``/``login`` frames do that in the consumer."""

    groups = ["room"]

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data == "logout":
            await logout(self.scope)
        elif text_data == "login":
            user = await User.objects.aget(username="alice")
            await login(self.scope, user, backend="django.contrib.auth.backends.ModelBackend")
            await self.scope["session"].asave()
        await self.send(text_data=describe(self.scope["user"]))


class SyncEcho(WebsocketConsumer):
    def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        self.send(text_data=describe(self.scope["user"]))


@pytest.fixture
def memory_layer() -> InMemoryChannelLayer:
    channel_layers.configure(MEMORY)
    layer = get_channel_layer()
    assert isinstance(layer, InMemoryChannelLayer)
    return layer


@pytest.fixture
def alice(transactional_db: None) -> User:
    return User.objects.create_user("alice", password="secret")


def browser(user: User) -> Client:
    """A browser logged in as ``user`` through Django's own login."""
    client = Client()
    client.force_login(user)
    return client


def key_of(client: Client) -> str:
    return str(client.cookies[settings.SESSION_COOKIE_NAME].value)


async def socket(key: str | None, consumer: Any = Echo) -> WebsocketCommunicator:
    headers = [session_cookie(key)] if key else []
    communicator = WebsocketCommunicator(
        AuthMiddlewareStack(consumer.as_asgi()), "/ws/", headers=headers
    )
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def says(communicator: WebsocketCommunicator, text: str = "who") -> str:
    await communicator.send_to(text_data=text)
    answer = await communicator.receive_from(PATIENCE)
    assert isinstance(answer, str)
    return answer


async def closed_with(communicator: WebsocketCommunicator) -> int:
    """The code the socket was closed with by the server (fails if it sends anything else)."""
    message = await communicator.receive_output(PATIENCE)
    assert message["type"] == "websocket.close", message
    code: int = message["code"]
    await communicator.wait(PATIENCE)
    return code


# -- one process, the in-memory layer ----------------------------------------------------------


@DB
async def test_logout_in_a_view_closes_every_socket_of_that_session_only(
    memory_layer: InMemoryChannelLayer, alice: User
) -> None:
    bob = await User.objects.acreate_user("bob", password="secret")
    tab, laptop, bobs = await sync_to_async(
        lambda: (browser(alice), browser(alice), browser(bob))
    )()
    key = key_of(tab)
    first, second = await socket(key), await socket(key)
    other_session, bobs_socket = await socket(key_of(laptop)), await socket(key_of(bobs))
    assert await says(first) == "alice"

    await sync_to_async(tab.logout)()  # Django's logout view path: a sync flush

    assert await closed_with(first) == SESSION_ENDED
    assert await closed_with(second) == SESSION_ENDED
    assert await says(other_session) == "alice"  # alice's other browser is still logged in
    assert await says(bobs_socket) == "bob"
    # the closed sockets left their groups: nothing of them stays in the layer
    assert memory_layer.members(session_group(key)) == []
    assert len(memory_layer.members(user_group(alice.pk))) == 1
    await other_session.disconnect()
    await bobs_socket.disconnect()
    assert memory_layer.group_names() == []


@DB
@pytest.mark.parametrize("how", ["flush", "aflush", "cycle_key", "acycle_key"])
async def test_a_session_flushed_or_cycled_closes_its_sockets(
    memory_layer: InMemoryChannelLayer, alice: User, how: str
) -> None:
    """Flushed (logout) or cycled (a login again, a password change in this browser): the
    old key is gone from the store, so nothing authenticates its sockets any more."""
    key = key_of(await sync_to_async(browser)(alice))
    communicator = await socket(key)
    session = SessionStore(key)
    await session.aload()
    if how.startswith("a"):
        await getattr(session, how)()
    else:
        await sync_to_async(getattr(session, how))()
    assert session.session_key != key
    assert await closed_with(communicator) == SESSION_ENDED


@DB
async def test_a_password_change_closes_every_socket_of_the_user(
    memory_layer: InMemoryChannelLayer, alice: User
) -> None:
    """Django logs out every session of a user whose password changed: their sockets close,
    in every browser, the sync consumer's too; an anonymous socket stays."""
    keys = await sync_to_async(lambda: [key_of(browser(alice)) for _ in range(2)])()
    sockets = [await socket(keys[0]), await socket(keys[1], SyncEcho)]
    anonymous = await socket(None)

    def change_password() -> None:
        alice.set_password("new secret")
        alice.save()

    await sync_to_async(change_password)()
    for communicator in sockets:
        assert await closed_with(communicator) == SESSION_ENDED
    assert await says(anonymous) == "anonymous"
    await anonymous.disconnect()


@DB
async def test_saving_a_user_without_a_new_password_closes_nothing(
    memory_layer: InMemoryChannelLayer, alice: User
) -> None:
    communicator = await socket(key_of(await sync_to_async(browser)(alice)))
    alice.first_name = "Alice"
    await alice.asave()
    assert await says(communicator) == "alice"
    await communicator.disconnect()


@DB
async def test_logout_inside_a_consumer_closes_the_sessions_other_sockets_not_itself(
    memory_layer: InMemoryChannelLayer, alice: User
) -> None:
    key = key_of(await sync_to_async(browser)(alice))
    caller, other = await socket(key), await socket(key)
    assert await says(caller, "logout") == "anonymous"
    assert await closed_with(other) == SESSION_ENDED
    assert await says(caller) == "anonymous"  # still open, anonymous now
    await caller.disconnect()


@DB
async def test_login_inside_a_consumer_binds_the_socket_to_its_new_session(
    memory_layer: InMemoryChannelLayer, alice: User
) -> None:
    communicator = await socket(None)
    assert memory_layer.group_names() == ["room"]  # an anonymous socket joins nothing
    assert await says(communicator, "login") == "alice"
    key = (await Session.objects.aget()).session_key  # the one session: made by login()
    assert len(memory_layer.members(session_group(key))) == 1
    assert len(memory_layer.members(user_group(alice.pk))) == 1
    # a logout in a view of the browser holding the new session's cookie closes it
    view = Client()
    view.cookies[settings.SESSION_COOKIE_NAME] = key
    await sync_to_async(view.logout)()
    assert await closed_with(communicator) == SESSION_ENDED


@DB
async def test_a_forged_end_message_in_a_room_closes_nobody(
    memory_layer: InMemoryChannelLayer, alice: User, caplog: pytest.LogCaptureFixture
) -> None:
    """A consumer that forwards client JSON into a room's group_send cannot be made to close
    the room: the message must name the socket's own session group, an HMAC nobody else has."""
    communicator = await socket(key_of(await sync_to_async(browser)(alice)))
    for forged in ({"type": MESSAGE_TYPE}, {"type": MESSAGE_TYPE, "group": "room"}):
        await memory_layer.group_send("room", forged)
    with caplog.at_level(logging.WARNING, "channelworks.auth"):
        assert await says(communicator) == "alice"
    assert "names no group of this socket" in caplog.text
    await communicator.disconnect()


@DB
async def test_without_a_channel_layer_a_logout_just_works(alice: User) -> None:
    client = await sync_to_async(browser)(alice)
    communicator = await socket(key_of(client), SyncEcho)  # Echo's groups need a layer
    await sync_to_async(client.logout)()  # nothing to send to, nothing fails
    assert await says(communicator) == "alice"  # as before: this socket's copy of the session
    await communicator.disconnect()


def test_group_names_hide_the_key_and_follow_the_name_rules(settings: Any) -> None:
    key = "k" * 32
    group = session_group(key)
    InMemoryChannelLayer().require_valid_group_name(group)
    assert key not in group
    assert session_group(key) == group != session_group("j" * 32)
    settings.SECRET_KEY = "another secret"
    assert session_group(key) != group  # an HMAC under SECRET_KEY: not computable without it
    assert user_group(1) != user_group(2)


# -- two processes sharing Redis ---------------------------------------------------------------

ENDER = textwrap.dedent(
    """
    import sys

    import django

    django.setup()
    from asgiref.sync import async_to_sync
    from django.contrib.auth.models import User
    from django.contrib.sessions.backends.db import SessionStore

    from channelworks.layers import get_channel_layer

    how, value = sys.argv[1], sys.argv[2]
    if how == "flush":  # what Django's logout view does to the session
        session = SessionStore(value)
        session.load()
        session.flush()
    else:
        user = User.objects.get(username=value)
        user.set_password("changed elsewhere")
        user.save()
    async_to_sync(get_channel_layer().close)()
    """
)


@pytest.fixture
async def redis_layers(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    """This process's default layer is a Redis layer under a fresh prefix; returns the prefix
    and a settings module for another process sharing it and this test database."""
    require_service("Redis", redis_reachable())
    prefix = f"test-{secrets.token_hex(6)}"
    config = {
        "default": {
            "BACKEND": "channelworks.layers.redis.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": prefix},
        }
    }
    channel_layers.configure(config)
    (tmp_path / "other_settings.py").write_text(
        "from tests.settings import *  # noqa\n"
        f"DATABASES = {{'default': {{'ENGINE': 'django.db.backends.sqlite3', "
        f"'NAME': {str(connection.settings_dict['NAME'])!r}}}}}\n"
        f"CHANNEL_LAYERS = {config!r}\n"
    )
    yield prefix, tmp_path
    layer = get_channel_layer()
    if layer is not None:
        await layer.flush()
        await layer.close()


def run_elsewhere(settings_dir: Path, how: str, value: str) -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "other_settings",
        "PYTHONPATH": os.pathsep.join([str(settings_dir), os.getcwd()]),
    }
    subprocess.run([sys.executable, "-c", ENDER, how, value], env=env, check=True, timeout=60)


@DB
@pytest.mark.parametrize("how", ["flush", "password"])
async def test_a_session_ended_in_another_process_closes_the_sockets_here(
    redis_layers: tuple[str, Path], alice: User, how: str
) -> None:
    """Another process (a WSGI server, a worker) logs alice out or changes her password: her
    sockets here close with 4401 through Redis; a socket of another session of hers stays
    open when only one session was flushed."""
    _, settings_dir = redis_layers
    tab, laptop = await sync_to_async(lambda: (browser(alice), browser(alice)))()
    first, second = await socket(key_of(tab)), await socket(key_of(tab))
    elsewhere = await socket(key_of(laptop))
    assert await says(first) == "alice"

    value = key_of(tab) if how == "flush" else "alice"
    await asyncio.to_thread(run_elsewhere, settings_dir, how, value)

    assert await closed_with(first) == SESSION_ENDED
    assert await closed_with(second) == SESSION_ENDED
    if how == "flush":
        assert await says(elsewhere) == "alice"
        await elsewhere.disconnect()
    else:
        assert await closed_with(elsewhere) == SESSION_ENDED
