"""A reviewer's paths by which a user loses a private room: each test has a member's page join
the room's topic, takes the room away from them, and expects the page told at once (a
``recheck`` kick; its join again is refused), hearing nothing more of the room
(chat/signals.py)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import transaction

from channelworks.db import database_sync_to_async
from channelworks.demo.chat import topics
from channelworks.demo.chat.models import Room
from channelworks.layers import InMemoryChannelLayer
from tests.demo.support import Topics, in_room

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("channelworks.demo.urls")]


@pytest.fixture
def backstage(alice: User, bob: User) -> Room:
    room = Room.objects.create(name="Backstage", slug="backstage", is_private=True)
    room.members.add(alice, bob)
    return room


async def told_and_refused(page: Topics) -> None:
    frame = await page.event("chat:backstage", "close")
    assert frame[4] == {"reason": "recheck"}, f"a removed user still hears the room: {frame}"
    assert (await page.join("chat:backstage"))["status"] == "error"


async def test_a_deleted_user_is_closed_out_of_a_private_room(
    backstage: Room, bob: User, alice_session: str, bob_session: str
) -> None:
    # The admin's "delete user": the memberships go with the user, by cascade, no m2m_changed.
    alice_page = await in_room("backstage", alice_session)
    bob_page = await in_room("backstage", bob_session)
    await database_sync_to_async(bob.delete)()
    await told_and_refused(bob_page)
    await alice_page.push("chat:backstage", "message", {"text": "after bob was deleted"})
    frame = await alice_page.event("chat:backstage", "message")
    assert frame[4]["text"] == "after bob was deleted"
    assert await bob_page.nothing()
    await alice_page.close()


async def test_a_member_removed_while_the_socket_joins_is_closed_out(
    backstage: Room, bob: User, alice_session: str, bob_session: str, monkeypatch: Any
) -> None:
    # may_see says "visible", then the removal commits (and its kick goes to the topic's
    # group) before the join is done: the socket must be in the group already to hear it.
    real_may_see = topics.may_see

    async def may_see_then_removal(user: Any, slug: str) -> Any:
        found = await real_may_see(user, slug)
        if user.username == "bob":
            await database_sync_to_async(backstage.members.remove)(bob)
        return found

    monkeypatch.setattr(topics, "may_see", may_see_then_removal)
    bob_page = await in_room("backstage", bob_session)
    monkeypatch.setattr(topics, "may_see", real_may_see)
    await told_and_refused(bob_page)
    alice_page = await in_room("backstage", alice_session)
    await alice_page.push("chat:backstage", "message", {"text": "members only"})
    assert (await alice_page.event("chat:backstage", "message"))[4]["text"] == "members only"
    assert await bob_page.nothing()
    await alice_page.close()


def test_a_layer_outage_does_not_fail_a_change_that_has_committed(
    backstage: Room, bob: User, channel_layer: InMemoryChannelLayer, monkeypatch: Any
) -> None:
    # Redis down while the admin removes bob: the removal commits, then the on_commit
    # announcement raises out of the admin's atomic block (a 500 for a saved change, and the
    # transaction's later on_commit callbacks are skipped).
    async def layer_down(group: str, message: Any, **options: Any) -> None:
        raise ConnectionError("Redis is unavailable")

    monkeypatch.setattr(channel_layer, "group_send", layer_down)
    with transaction.atomic():  # as ModelAdmin.changeform_view
        backstage.members.remove(bob)
    assert not backstage.members.filter(pk=bob.pk).exists()
