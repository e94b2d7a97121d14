"""Chat rooms: their topic, the saved history, who may see a room, and bad input."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from channelworks.db import database_sync_to_async
from channelworks.demo.chat.models import Message, Room
from channelworks.demo.chat.topics import RoomTopic
from channelworks.demo.chat.views import CATCH_UP
from channelworks.exceptions import LayerUnavailable
from channelworks.layers import InMemoryChannelLayer
from channelworks.topics import group_for
from tests.demo.support import Topics, close_code, in_room

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("channelworks.demo.urls")]


@pytest.fixture
def general() -> Room:
    return Room.objects.create(name="General", slug="general")


@pytest.fixture
def backstage(alice: User) -> Room:
    room = Room.objects.create(name="Backstage", slug="backstage", is_private=True)
    room.members.add(alice)
    return room


messages_in = database_sync_to_async(
    lambda room: list(room.messages.values_list("text", flat=True))
)


# -- the room's topic: messages ----------------------------------------------------------------


async def say(page: Topics, slug: str, text: str) -> int:
    """Push a message to room ``slug``; its id (the reply)."""
    reply = await page.push(f"chat:{slug}", "message", {"text": text})
    assert reply["status"] == "ok", reply
    message_id: int = reply["response"]["id"]
    return message_id


async def test_a_message_reaches_everyone_in_the_room_and_is_saved(
    general: Room, alice_session: str, bob_session: str
) -> None:
    alice = await in_room("general", alice_session)
    bob = await in_room("general", bob_session)
    sent = await say(alice, "general", "  hello bob  ")
    for page in (alice, bob):
        frame = await page.event("chat:general", "message")
        message = frame[4]
        assert (message["id"], message["author"], message["text"]) == (sent, "alice", "hello bob")
        assert frame[5][0] == 1  # with its position in the room's log
    assert await messages_in(general) == ["hello bob"]
    await alice.close()
    await bob.close()


async def test_rooms_do_not_hear_each_other(
    general: Room, alice_session: str, bob_session: str
) -> None:
    await database_sync_to_async(Room.objects.create)(name="Random", slug="random")
    alice = await in_room("general", alice_session)
    bob = await in_room("random", bob_session)
    await say(alice, "general", "only general")
    assert (await alice.event("chat:general", "message"))[4]["text"] == "only general"
    assert await bob.nothing()
    await alice.close()
    await bob.close()


async def test_html_is_carried_as_text(general: Room, alice_session: str) -> None:
    alice = await in_room("general", alice_session)
    await say(alice, "general", "<img src=x onerror=alert(1)>")
    frame = await alice.event("chat:general", "message")
    assert frame[4]["text"] == "<img src=x onerror=alert(1)>"
    await alice.close()


# -- reconnecting: nothing missed, nothing twice ---------------------------------------------


async def send_six(page: Topics) -> None:
    for n in range(1, 7):
        await say(page, "general", f"missed {n}")
        assert (await page.event("chat:general", "message"))[4]["text"] == f"missed {n}"


async def test_a_page_that_reconnects_gets_what_it_missed_from_the_log(
    general: Room, alice_session: str, bob_session: str
) -> None:
    alice = await Topics.open(alice_session)
    offset, epoch = (await alice.join("chat:general"))["response"]["position"]
    await alice.close()
    bob = await in_room("general", bob_session)
    await send_six(bob)

    alice = await Topics.open(alice_session)
    reply = await alice.join("chat:general", since=[offset, epoch])
    assert reply["response"] | {"response": None} == {
        "response": None,
        "recovered": True,
        "missed": 6,
        "position": [offset + 6, epoch],
    }
    frames = [await alice.event("chat:general", "message") for _ in range(6)]
    assert [f[4]["text"] for f in frames] == [f"missed {n}" for n in range(1, 7)]
    assert [f[5] for f in frames] == [[offset + n, epoch] for n in range(1, 7)]
    await say(bob, "general", "live again")
    assert (await alice.event("chat:general", "message"))[4]["text"] == "live again"
    assert await alice.nothing()  # no replay twice
    await alice.close()
    await bob.close()


async def test_a_lost_log_says_so_and_the_database_has_what_was_missed(
    general: Room, alice: User, alice_session: str, bob_session: str
) -> None:
    seen = await database_sync_to_async(Message.objects.create)(
        room=general, author=alice, text="seen before"
    )
    bob = await in_room("general", bob_session)
    await send_six(bob)
    # The server restarted (a new epoch): the page's position names a log that is gone.
    alice_page = await Topics.open(alice_session)
    reply = await alice_page.join("chat:general", since=[9, "gone"])
    assert reply["response"]["recovered"] is False
    assert reply["response"]["position"][1] != "gone"
    assert await alice_page.nothing()  # nothing replayed: never a part that looks whole
    # The page then reads the messages after the newest it shows (chat.js).
    client = Client()
    await database_sync_to_async(client.force_login)(alice)
    response = await database_sync_to_async(client.get)(f"/rooms/general/messages/?after={seen.pk}")
    page = response.json()
    assert [m["text"] for m in page["messages"]] == [f"missed {n}" for n in range(1, 7)]
    assert page["more"] is False
    await alice_page.close()
    await bob.close()


async def test_a_page_joins_from_where_the_log_stood_when_it_was_made(
    general: Room, alice: User, alice_session: str, bob_session: str
) -> None:
    bob = await in_room("general", bob_session)
    await say(bob, "general", "before the page")
    client = Client()
    await database_sync_to_async(client.force_login)(alice)
    response = await database_sync_to_async(client.get)("/rooms/general/")
    position = response.context["position"]
    assert b'id="room-position"' in response.content
    await say(bob, "general", "between the page and its socket")
    alice_page = await Topics.open(alice_session)
    reply = await alice_page.join("chat:general", since=position)
    assert (reply["response"]["recovered"], reply["response"]["missed"]) == (True, 1)
    frame = await alice_page.event("chat:general", "message")
    assert frame[4]["text"] == "between the page and its socket"
    assert await alice_page.nothing()
    await alice_page.close()
    await bob.close()


@pytest.mark.parametrize("since", [["x", "e"], [1], "1", [-1, "e"]])
async def test_a_malformed_position_is_not_recovered(
    general: Room, alice_session: str, since: object
) -> None:
    page = await Topics.open(alice_session)
    reply = await page.join("chat:general", since=since)
    assert (reply["status"], reply["response"]["recovered"]) == ("ok", False)
    await page.close()


def test_catching_up_from_the_database_is_bounded(general: Room, alice: User) -> None:
    Message.objects.bulk_create(
        Message(room=general, author=alice, text=f"m{n}") for n in range(CATCH_UP + 1)
    )
    first = general.messages.order_by("id").values_list("id", flat=True).first()
    client = Client()
    client.force_login(alice)
    page = client.get("/rooms/general/messages/?after=0").json()
    assert (len(page["messages"]), page["more"]) == (CATCH_UP, True)  # the page reloads
    page = client.get(f"/rooms/general/messages/?after={first}").json()
    assert (len(page["messages"]), page["more"]) == (CATCH_UP, False)
    assert page["messages"][0]["text"] == "m1"
    for bad in ("x", "-1", str(2**63), ""):
        assert client.get(f"/rooms/general/messages/?after={bad}").status_code == 400


# -- who may join ------------------------------------------------------------------------------


async def refusal(topic: str, session: str | None) -> str:
    page = await Topics.open(session)
    reply = await page.join(topic)
    await page.close()
    assert reply["status"] == "error", reply
    reason: str = reply["response"]["reason"]
    return reason


async def test_who_may_not_join_a_room_is_refused(
    general: Room, backstage: Room, carol_session: str
) -> None:
    assert await refusal("chat:general", None) == "login_required"
    assert await refusal("chat:general", "no-such-session") == "login_required"
    assert await refusal("chat:nowhere", carol_session) == "not_found"
    assert await refusal("chat:backstage", carol_session) == "not_found"  # private
    assert await refusal("activity:backstage", carol_session) == "not_found"


async def test_a_join_that_fails_leaves_the_rooms_group(
    backstage: Room,
    alice_session: str,
    carol_session: str,
    channel_layer: InMemoryChannelLayer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The join is in the topic's group before it asks the database (signals.py's kicks must
    # reach it): a refusal, or a failure after it, takes it out again.
    carol = await Topics.open(carol_session)
    assert (await carol.join("chat:backstage"))["status"] == "error"
    assert not channel_layer.members(group_for("chat:backstage"))

    async def track_fails(*args: object) -> None:
        raise RuntimeError("presence is down")

    monkeypatch.setattr(RoomTopic, "track", track_fails)
    alice = await Topics.open(alice_session)
    reply = await alice.join("chat:backstage")
    assert reply == {"status": "error", "response": {"reason": "join_crashed"}}
    assert not channel_layer.members(group_for("chat:backstage"))
    for page in (alice, carol):
        await page.close()


async def test_a_private_room_hears_only_its_members(
    backstage: Room, alice_session: str, carol_session: str
) -> None:
    carol = await Topics.open(carol_session)
    assert (await carol.join("chat:backstage"))["status"] == "error"
    alice = await in_room("backstage", alice_session)
    await say(alice, "backstage", "members only")
    assert (await alice.event("chat:backstage", "message"))[4]["text"] == "members only"
    assert await carol.nothing()
    await alice.close()
    await carol.close()


async def recheck_refused(page: Topics, slug: str) -> None:
    """The page is told to join again (chat/signals.py), and its join is refused."""
    frame = await page.event(f"chat:{slug}", "close")
    assert frame[4] == {"reason": "recheck"}
    assert await page.join(f"chat:{slug}") == {
        "status": "error",
        "response": {"reason": "not_found"},
    }


async def test_a_member_removed_from_a_private_room_is_told_at_once(
    backstage: Room, alice: User, bob: User, alice_session: str, bob_session: str
) -> None:
    await database_sync_to_async(backstage.members.add)(bob)
    alice_page = await in_room("backstage", alice_session)
    bob_page = await in_room("backstage", bob_session)
    await database_sync_to_async(backstage.members.remove)(bob)  # as the admin does
    await recheck_refused(bob_page, "backstage")
    assert await alice_page.nothing()  # alice stays, untold
    await say(alice_page, "backstage", "bob is gone")
    assert (await alice_page.event("chat:backstage", "message"))[4]["text"] == "bob is gone"
    assert await bob_page.nothing()
    # Taken away from the user's side, and all at once: the same.
    alice_again = await in_room("backstage", alice_session)
    await database_sync_to_async(alice.private_rooms.clear)()
    for page in (alice_page, alice_again):
        await recheck_refused(page, "backstage")


async def test_a_room_made_private_leaves_out_who_is_not_a_member(
    general: Room, alice: User, alice_session: str, bob_session: str
) -> None:
    await database_sync_to_async(general.members.add)(alice)
    alice_page = await in_room("general", alice_session)
    bob_page = await in_room("general", bob_session)
    general.is_private = True
    await database_sync_to_async(general.save)()
    await recheck_refused(bob_page, "general")
    assert (await alice_page.event("chat:general", "close"))[4] == {"reason": "recheck"}
    assert (await alice_page.join("chat:general"))["status"] == "ok"  # a member: back in
    await alice_page.close()


async def test_a_room_moved_or_deleted_is_gone_for_its_pages(
    general: Room, alice_session: str
) -> None:
    await database_sync_to_async(Room.objects.create)(name="Random", slug="random")
    moved = await in_room("general", alice_session)
    deleted = await in_room("random", alice_session)
    general.slug = "lobby"
    await database_sync_to_async(general.save)()
    await recheck_refused(moved, "general")
    await database_sync_to_async(Room.objects.filter(slug="random").delete)()
    await recheck_refused(deleted, "random")


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"text": ""}, "required"),
        ({"text": "   "}, "required"),
        ({}, "required"),
        ({"text": "x" * (Message.MAX_LENGTH + 1)}, "max_length"),
        ({"text": {"a": 1}}, "invalid"),  # not saved as "{'a': 1}"
        ({"text": ["hi"]}, "invalid"),
        ({"text": 5}, "invalid"),
        ({"text": True}, "invalid"),
    ],
)
async def test_bad_messages_get_an_error_reply_and_touch_no_one(
    general: Room, alice_session: str, bob_session: str, payload: object, code: str
) -> None:
    alice = await in_room("general", alice_session)
    bob = await in_room("general", bob_session)
    reply = await alice.push("chat:general", "message", payload)
    assert (reply["status"], reply["response"]["reason"]) == ("error", code)
    assert reply["response"]["message"]
    assert await bob.nothing()
    assert await messages_in(general) == []
    # alice's socket is still open and works
    await say(alice, "general", "after the error")
    assert (await bob.event("chat:general", "message"))[4]["text"] == "after the error"
    await alice.close()
    await bob.close()


async def test_an_unknown_push_gets_an_error_reply(general: Room, alice_session: str) -> None:
    alice = await in_room("general", alice_session)
    reply = await alice.push("chat:general", "shout", {"text": "hi"})
    assert reply == {"status": "error", "response": {"reason": "unhandled_event"}}
    for bad in ({}, {"id": "7"}, {"id": True}, {"id": 0}, {"id": 2**63}):
        reply = await alice.push("chat:general", "read", bad)
        assert reply["response"]["reason"] == "invalid"
    await alice.close()


async def test_a_frame_that_is_not_json_closes_only_that_socket(
    general: Room, alice_session: str, bob_session: str
) -> None:
    alice = await in_room("general", alice_session)
    bob = await in_room("general", bob_session)
    await alice.socket.send_to(text_data="{not json")
    assert (await close_code(alice.socket))[0] == 4400
    await say(bob, "general", "still here")
    assert (await bob.event("chat:general", "message"))[4]["text"] == "still here"
    await bob.close()


# -- pages -------------------------------------------------------------------------------------


def test_the_room_page_shows_the_saved_history_escaped(general: Room, alice: User) -> None:
    Message.objects.create(room=general, author=alice, text="<b>bold?</b>")
    client = Client()
    client.force_login(alice)
    response = client.get("/rooms/general/")
    assert response.status_code == 200
    assert b"\\u003Cb\\u003Ebold?\\u003C/b\\u003E" in response.content  # json_script escapes
    assert b"<b>bold?</b>" not in response.content


def test_a_missing_or_hidden_room_is_a_clear_404(backstage: Room, carol: User) -> None:
    client = Client()
    client.force_login(carol)
    for slug in ("nowhere", "backstage"):
        response = client.get(f"/rooms/{slug}/")
        assert response.status_code == 404
        assert f"No room “{slug}”".encode() in response.content


def test_the_room_list_hides_private_rooms_from_non_members(
    general: Room, backstage: Room, alice: User, carol: User
) -> None:
    client = Client()
    client.force_login(carol)
    assert b"Backstage" not in client.get("/rooms/").content
    client.force_login(alice)
    assert b"Backstage" in client.get("/rooms/").content


def test_creating_a_room(alice: User) -> None:
    client = Client()
    client.force_login(alice)
    response = client.post("/rooms/", {"name": "Book Club", "is_private": "on"})
    assert response.status_code == 302
    assert response["Location"] == "/rooms/book-club/"
    room = Room.objects.get(slug="book-club")
    assert list(room.members.all()) == [alice]
    again = client.post("/rooms/", {"name": "book club"})
    assert again.status_code == 200
    assert b"exists already" in again.content


async def test_a_gone_rooms_address_is_not_taken_while_its_log_holds_its_messages(
    backstage: Room, alice_session: str, carol: User
) -> None:
    # The log of chat:<slug> outlives its room: a new room at that address would replay a
    # private room's messages to whoever joins it with an old position.
    alice = await in_room("backstage", alice_session)
    await say(alice, "backstage", "members only")
    await alice.close()
    await database_sync_to_async(backstage.delete)()
    client = Client()
    await database_sync_to_async(client.force_login)(carol)
    response = await database_sync_to_async(client.post)("/rooms/", {"name": "Backstage"})
    assert response.status_code == 200
    assert b"deleted or renamed less than an hour ago" in response.content
    assert not await database_sync_to_async(Room.objects.filter(slug="backstage").exists)()


def test_a_rooms_address_is_not_taken_while_its_log_cannot_be_read(
    alice: User, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The layer down: the name cannot be checked, so it is not taken (a clear form error,
    the failure logged); the page that reads a position joins from its first push instead."""
    from channelworks.demo.resume import topic_position
    from channelworks.layers import get_channel_layer

    async def down(*args: Any, **kwargs: Any) -> Any:
        raise LayerUnavailable("history", "chat:garden", "redis:6379", "down for the test")

    monkeypatch.setattr(get_channel_layer(), "history", down)
    client = Client()
    client.force_login(alice)
    response = client.post("/rooms/", {"name": "Garden"})
    assert response.status_code == 200
    assert b"Cannot check this name now" in response.content
    assert not Room.objects.filter(slug="garden").exists()
    assert topic_position("chat:garden") is None
    assert "could not read the log of topic chat:garden" in caplog.text


async def test_the_admin_cannot_move_a_room_onto_an_address_whose_log_holds_messages(
    backstage: Room, general: Room, alice: User, alice_session: str
) -> None:
    alice_page = await in_room("backstage", alice_session)
    await say(alice_page, "backstage", "members only")
    await alice_page.close()
    backstage.slug = "crew"  # moved away: chat:backstage still holds "members only"
    await database_sync_to_async(backstage.save)()
    alice.is_staff = alice.is_superuser = True
    await database_sync_to_async(alice.save)()
    client = Client()
    await database_sync_to_async(client.force_login)(alice)
    form = {"name": "General", "slug": "backstage", "is_private": "", "members": []}
    url = f"/admin/chat/room/{general.pk}/change/"
    response = await database_sync_to_async(client.post)(url, form)
    assert response.status_code == 200
    assert b"deleted or renamed less than an hour ago" in response.content
    await database_sync_to_async(general.refresh_from_db)()
    assert general.slug == "general"
    # an address whose log is empty is fine; so is a room keeping its own, log and all
    form["slug"] = "lobby"
    assert (await database_sync_to_async(client.post)(url, form)).status_code == 302
    alice_page = await in_room("lobby", alice_session)
    await say(alice_page, "lobby", "in the lobby")
    await alice_page.close()
    form["name"] = "Lobby"
    assert (await database_sync_to_async(client.post)(url, form)).status_code == 302
    await database_sync_to_async(general.refresh_from_db)()
    assert (general.name, general.slug) == ("Lobby", "lobby")


def test_pages_need_a_login() -> None:
    response = Client().get("/rooms/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_the_room_page_opens_with_the_newest_messages_and_pages_back(
    general: Room, backstage: Room, alice: User, carol: User
) -> None:
    Message.objects.bulk_create(
        Message(room=general, author=alice, text=f"m{n}") for n in range(120)
    )
    ids = list(general.messages.order_by("id").values_list("id", flat=True))
    client = Client()
    client.force_login(alice)
    page = client.get("/rooms/general/").context["history"]
    assert [m["text"] for m in page["messages"]] == [f"m{n}" for n in range(70, 120)]
    assert page["more"] is True
    older = client.get(f"/rooms/general/messages/?before={ids[70]}").json()
    assert [m["text"] for m in older["messages"]] == [f"m{n}" for n in range(20, 70)]
    assert older["more"] is True
    oldest = client.get(f"/rooms/general/messages/?before={ids[20]}").json()
    assert [m["text"] for m in oldest["messages"]] == [f"m{n}" for n in range(20)]
    assert oldest["more"] is False
    for bad in ("", "?before=", "?before=0", "?before=x", "?before=-1", f"?before={2**63}"):
        assert client.get(f"/rooms/general/messages/{bad}").status_code == 400
    client.force_login(carol)  # not a member of the private room
    assert client.get(f"/rooms/backstage/messages/?before={ids[0]}").status_code == 404


# -- unread counts -----------------------------------------------------------------------------


def unread_in_list(client: Client) -> dict[str, int]:
    rooms = client.get("/rooms/").context["rooms"]
    return {room.slug: room.unread for room in rooms}


async def test_unread_counts_follow_what_the_page_was_shown(
    general: Room, alice: User, bob: User, alice_session: str, bob_session: str
) -> None:
    client = Client()
    await database_sync_to_async(client.force_login)(alice)
    bob_page = await in_room("general", bob_session)
    one = await say(bob_page, "general", "one")
    assert await database_sync_to_async(unread_in_list)(client) == {"general": 1}

    alice_page = await in_room("general", alice_session)
    two = await say(bob_page, "general", "two")
    assert (await alice_page.event("chat:general", "message"))[4]["text"] == "two"
    reply = await alice_page.push("chat:general", "read", {"id": one})  # shown "one" only
    assert reply["status"] == "ok"
    assert await database_sync_to_async(unread_in_list)(client) == {"general": 1}
    await alice_page.push("chat:general", "read", {"id": two + 100})  # never past the newest
    assert await database_sync_to_async(unread_in_list)(client) == {"general": 0}
    await say(bob_page, "general", "three")
    assert await database_sync_to_async(unread_in_list)(client) == {"general": 1}
    await database_sync_to_async(client.get)("/rooms/general/")  # the page shows it: read
    assert await database_sync_to_async(unread_in_list)(client) == {"general": 0}
    await alice_page.close()
    await bob_page.close()
