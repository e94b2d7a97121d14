"""A reviewer's paths by which a user loses a private room: each test opens a member's socket,
takes the room away from them, and expects the socket closed with 4403 at once, hearing
nothing more of the room (chat/signals.py)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import transaction

from channelworks.db import database_sync_to_async
from channelworks.demo.chat import consumers
from channelworks.demo.chat.models import Room
from channelworks.layers import InMemoryChannelLayer
from tests.demo.support import enter

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("channelworks.demo.urls")]


@pytest.fixture
def backstage(alice: User, bob: User) -> Room:
    room = Room.objects.create(name="Backstage", slug="backstage", is_private=True)
    room.members.add(alice, bob)
    return room


async def test_a_deleted_user_is_closed_out_of_a_private_room(
    backstage: Room, bob: User, alice_session: str, bob_session: str
) -> None:
    # The admin's "delete user": the memberships go with the user, by cascade, no m2m_changed.
    alice_socket = await enter("/ws/chat/backstage/", alice_session)
    bob_socket = await enter("/ws/chat/backstage/", bob_session)
    await database_sync_to_async(bob.delete)()
    await alice_socket.send_json_to({"type": "message", "text": "after bob was deleted"})
    assert (await alice_socket.receive_json_from())["text"] == "after bob was deleted"
    frame = await bob_socket.receive_output(1)
    assert frame["type"] == "websocket.close", f"a deleted user still hears the room: {frame}"
    await alice_socket.disconnect()


async def test_a_member_removed_while_the_socket_connects_is_closed_out(
    backstage: Room, bob: User, alice_session: str, bob_session: str, monkeypatch: Any
) -> None:
    # find_room says "visible", then the removal commits (and room.changed goes to the
    # group) before the socket has joined the group: nothing ever tells it.
    real_find_room = consumers.find_room

    async def find_room_then_removal(slug: str, user: Any) -> Any:
        found = await real_find_room(slug, user)
        if user.username == "bob":
            await database_sync_to_async(backstage.members.remove)(bob)
        return found

    monkeypatch.setattr(consumers, "find_room", find_room_then_removal)
    bob_socket = await enter("/ws/chat/backstage/", bob_session)
    monkeypatch.setattr(consumers, "find_room", real_find_room)
    alice_socket = await enter("/ws/chat/backstage/", alice_session)
    await alice_socket.send_json_to({"type": "message", "text": "members only"})
    assert (await alice_socket.receive_json_from())["text"] == "members only"
    frame = await bob_socket.receive_output(1)
    assert frame["type"] == "websocket.close", f"a removed member hears the room: {frame}"
    await alice_socket.disconnect()


def test_a_layer_outage_does_not_fail_a_change_that_has_committed(
    backstage: Room, bob: User, channel_layer: InMemoryChannelLayer, monkeypatch: Any
) -> None:
    # Redis down while the admin removes bob: the removal commits, then the on_commit
    # announcement raises out of the admin's atomic block (a 500 for a saved change, and the
    # transaction's later on_commit callbacks are skipped).
    async def layer_down(group: str, message: Any) -> None:
        raise ConnectionError("Redis is unavailable")

    monkeypatch.setattr(channel_layer, "group_send", layer_down)
    with transaction.atomic():  # as ModelAdmin.changeform_view
        backstage.members.remove(bob)
    assert not backstage.members.filter(pk=bob.pk).exists()
