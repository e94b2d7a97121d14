"""Direct messages, posts, comments, likes and the notification topic."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import AsyncClient, Client

from channelworks.db import database_sync_to_async
from channelworks.demo.social import topics
from channelworks.demo.social.models import (
    MAX_TEXT,
    Comment,
    DirectMessage,
    Like,
    Notification,
    Post,
)
from channelworks.demo.social.notify import catch_up, notify
from channelworks.demo.social.views import HISTORY
from tests.demo.support import Topics

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("channelworks.demo.urls")]


async def client_of(user: User) -> AsyncClient:
    client = AsyncClient()
    await client.aforce_login(user)
    return client


@pytest.fixture
def bobs_post(bob: User) -> Post:
    return Post.objects.create(author=bob, text="bob's post")


class Notifications:
    """A page's notification topic (``notifications:<user id>``), its events as
    ``{"type": event, **payload}``."""

    def __init__(self, page: Topics, user_id: int) -> None:
        self.page = page
        self.topic = f"notifications:{user_id}"

    @classmethod
    async def join(cls, username: str, session: str) -> Notifications:
        user = await database_sync_to_async(User.objects.get)(username=username)
        page = cls(await Topics.open(session), user.pk)
        assert (await page.page.join(page.topic))["status"] == "ok"
        return page

    async def push(self, event: str, payload: object = None) -> dict[str, Any]:
        return await self.page.push(self.topic, event, payload)

    async def receive_json_from(self) -> dict[str, Any]:
        frame = await self.page.frame()
        assert frame[2] == self.topic, frame
        return {"type": frame[3], **frame[4]}

    async def receive_nothing(self) -> bool:
        return await self.page.nothing()

    async def disconnect(self) -> None:
        await self.page.close()


async def bobs_notifications(bob_session: str) -> Notifications:
    """Bob's notification topic on a page's socket."""
    return await Notifications.join("bob", bob_session)


count = database_sync_to_async(lambda model, **lookups: model.objects.filter(**lookups).count())


# -- the notification topic -------------------------------------------------------------------


async def test_only_the_user_may_join_their_notifications(
    alice: User, bob: User, bob_session: str
) -> None:
    anonymous = await Topics.open()
    reply = await anonymous.join(f"notifications:{bob.pk}")
    assert reply["response"] == {"reason": "login_required"}
    page = await Topics.open(bob_session)
    for other in (str(alice.pk), "0", f"{bob.pk}0", "me"):
        assert (await page.join(f"notifications:{other}"))["response"] == {"reason": "forbidden"}
    assert (await page.join(f"notifications:{bob.pk}"))["status"] == "ok"
    for socket in (anonymous, page):
        await socket.close()


async def test_catching_up_starts_with_the_unread_count(bob: User, bob_session: str) -> None:
    await database_sync_to_async(Notification.objects.create)(recipient=bob, kind="like", text="x")
    socket = await bobs_notifications(bob_session)
    reply = await socket.push("catch_up", {"since": 0})
    assert reply["status"] == "ok"
    assert reply["response"]["unread"] == 1
    await socket.disconnect()


async def test_notify_reaches_every_tab_of_the_user_only(
    bob: User, bob_session: str, alice_session: str
) -> None:
    tabs = [await bobs_notifications(bob_session) for _ in range(2)]
    alice = await Notifications.join("alice", alice_session)
    await database_sync_to_async(notify)(bob, "like", "someone likes you", "/posts/")
    for tab in tabs:
        frame = await tab.receive_json_from()
        assert frame["type"] == "notification"
        assert (frame["text"], frame["url"], frame["unread"]) == ("someone likes you", "/posts/", 1)
        await tab.disconnect()
    assert await alice.receive_nothing()
    await alice.disconnect()


async def test_marking_read_updates_every_tab_and_only_ones_own(
    alice: User, bob: User, bob_session: str
) -> None:
    mine = await database_sync_to_async(notify)(bob, "like", "for bob")
    theirs = await database_sync_to_async(notify)(alice, "like", "for alice")
    socket = await bobs_notifications(bob_session)
    assert (await socket.push("mark_read", {"ids": [mine.pk, theirs.pk]}))["status"] == "ok"
    assert await socket.receive_json_from() == {"type": "unread", "count": 0}
    assert await count(Notification, recipient=alice, read=False) == 1
    await socket.disconnect()


@pytest.mark.parametrize(
    ("event", "payload", "reason"),
    [
        ("mark_read", {"ids": "all"}, "unknown"),
        ("mark_read", {"ids": [True]}, "unknown"),
        ("mark_read", {"ids": [2**63]}, "unknown"),  # no database integer
        ("mark_read", {"ids": list(range(1, 502))}, "unknown"),
        ("x", {}, "unknown"),
        ("catch_up", {"since": "7"}, "invalid"),
        ("catch_up", {"since": -1}, "invalid"),
        ("catch_up", {}, "invalid"),
    ],
)
async def test_bad_pushes_get_an_error_reply(
    bob_session: str, event: str, payload: dict[str, Any], reason: str
) -> None:
    socket = await bobs_notifications(bob_session)
    reply = await socket.push(event, payload)
    assert (reply["status"], reply["response"]["reason"]) == ("error", reason)
    assert (await socket.push("mark_all_read"))["status"] == "ok"
    assert await socket.receive_json_from() == {"type": "unread", "count": 0}
    await socket.disconnect()


async def test_a_page_gets_what_came_while_it_loaded(
    alice: User, bob: User, bob_session: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page was rendered knowing of ``known``; ``missed`` came before its socket joined
    the topic, ``raced`` while it was catching up (pushed live *and* found in the database:
    the page shows an id once)."""
    known = await database_sync_to_async(notify)(bob, "like", "known")
    await database_sync_to_async(notify)(bob, "like", "missed")
    await database_sync_to_async(notify)(alice, "like", "not bob's")

    def racing_catch_up(user_id: int, since: int) -> tuple[int, list[dict[str, object]]]:
        notify(bob, "like", "raced")
        return catch_up(user_id, since)

    monkeypatch.setattr(topics, "catch_up", racing_catch_up)
    socket = await bobs_notifications(bob_session)
    reply = await socket.push("catch_up", {"since": known.pk})
    assert reply["response"]["unread"] == 3
    assert [n["text"] for n in reply["response"]["missed"]] == ["missed", "raced"]
    raced = await socket.receive_json_from()
    assert (raced["type"], raced["text"]) == ("notification", "raced")  # live too
    assert await socket.receive_nothing()
    await socket.disconnect()


async def test_a_page_catches_up_with_what_another_page_read_meanwhile(
    bob: User, bob_session: str
) -> None:
    """Two of bob's pages were reconnecting when a direct message came; the first back shows
    it (its conversation page marks it read). The second still gets it, as read: it is how
    its own conversation page hears of the message (without a toast or a badge)."""
    known = await database_sync_to_async(notify)(bob, "like", "known")
    message = await database_sync_to_async(notify)(
        bob, "message", "alice: hi", data={"sender": "alice", "text": "hi", "id": 1}
    )
    first = await bobs_notifications(bob_session)
    reply = await first.push("catch_up", {"since": known.pk})
    assert [(n["id"], n["read"]) for n in reply["response"]["missed"]] == [(message.pk, False)]
    assert (await first.push("mark_read", {"ids": [message.pk]}))["status"] == "ok"
    second = await bobs_notifications(bob_session)
    reply = await second.push("catch_up", {"since": known.pk})
    assert reply["response"]["unread"] == 1  # "known"
    assert [(n["id"], n["text"], n["read"]) for n in reply["response"]["missed"]] == [
        (message.pk, "alice: hi", True)
    ]
    for page in (first, second):
        await page.disconnect()


def test_pages_carry_the_newest_notification_they_know_of(bob: User) -> None:
    client = Client()
    client.force_login(bob)
    assert b'data-since="0"' in client.get("/posts/").content
    latest = notify(bob, "like", "x")
    assert f'data-since="{latest.pk}"'.encode() in client.get("/posts/").content


# -- direct messages ---------------------------------------------------------------------------


async def test_a_direct_message_is_stored_and_notifies_the_recipient(
    alice: User, bob: User, bob_session: str
) -> None:
    socket = await bobs_notifications(bob_session)
    response = await (await client_of(alice)).post("/messages/bob/", {"text": "hi <bob>"})
    assert response.status_code == 302
    frame = await socket.receive_json_from()
    assert (frame["kind"], frame["unread"], frame["url"]) == ("message", 1, "/messages/alice/")
    assert frame["data"]["sender"] == "alice"
    assert frame["data"]["text"] == "hi <bob>"
    assert await count(DirectMessage, sender=alice, recipient=bob) == 1
    await socket.disconnect()


@pytest.mark.parametrize("text", ["", "   ", "x" * (MAX_TEXT + 1)])
async def test_a_bad_direct_message_is_refused_and_notifies_no_one(
    alice: User, bob: User, bob_session: str, text: str
) -> None:
    socket = await bobs_notifications(bob_session)
    response = await (await client_of(alice)).post("/messages/bob/", {"text": text})
    assert response.status_code == 200
    assert b"errorlist" in response.content
    assert await socket.receive_nothing()
    assert await count(DirectMessage) == 0
    await socket.disconnect()


def test_the_conversation_shows_the_latest_messages_oldest_first(alice: User, bob: User) -> None:
    DirectMessage.objects.bulk_create(
        DirectMessage(sender=alice, recipient=bob, text=f"dm {i}") for i in range(HISTORY + 5)
    )
    client = Client()
    client.force_login(bob)
    content = client.get("/messages/alice/").content.decode()
    assert ">dm 4<" not in content
    assert content.index(">dm 5<") < content.index(f">dm {HISTORY + 4}<")


def test_the_conversation_page_escapes_html(alice: User, bob: User) -> None:
    DirectMessage.objects.create(sender=alice, recipient=bob, text="<script>x</script>")
    client = Client()
    client.force_login(bob)
    content = client.get("/messages/alice/").content
    assert b"&lt;script&gt;x&lt;/script&gt;" in content
    assert b"<script>x</script>" not in content


def test_there_is_no_conversation_with_oneself(alice: User) -> None:
    client = Client()
    client.force_login(alice)
    for response in (
        client.get("/messages/alice/"),
        client.post("/messages/alice/", {"text": "note to self"}),
    ):
        assert response.status_code == 302
        assert response["Location"] == "/messages/"
    assert DirectMessage.objects.count() == 0
    assert Notification.objects.count() == 0


# -- posts, comments, likes --------------------------------------------------------------------


async def test_a_comment_notifies_the_author(
    alice: User, bobs_post: Post, bob_session: str
) -> None:
    socket = await bobs_notifications(bob_session)
    await (await client_of(alice)).post(f"/posts/{bobs_post.pk}/", {"text": "nice"})
    frame = await socket.receive_json_from()
    assert frame["kind"] == "comment"
    assert frame["text"] == "alice commented on your post: nice"
    assert frame["url"] == f"/posts/{bobs_post.pk}/"
    assert await count(Comment, post=bobs_post) == 1
    await socket.disconnect()


async def test_the_authors_own_comment_and_like_notify_no_one(
    bob: User, bobs_post: Post, bob_session: str
) -> None:
    socket = await bobs_notifications(bob_session)
    client = await client_of(bob)
    await client.post(f"/posts/{bobs_post.pk}/", {"text": "replying to myself"})
    await client.post(f"/posts/{bobs_post.pk}/like/")
    assert await socket.receive_nothing()
    assert await count(Notification) == 0
    await socket.disconnect()


async def test_a_like_notifies_the_author_and_unliking_does_not(
    alice: User, bobs_post: Post, bob_session: str
) -> None:
    socket = await bobs_notifications(bob_session)
    client = await client_of(alice)
    await client.post(f"/posts/{bobs_post.pk}/like/")
    assert (await socket.receive_json_from())["text"] == "alice likes your post"
    assert await count(Like, post=bobs_post) == 1
    await client.post(f"/posts/{bobs_post.pk}/like/")  # takes it back
    assert await count(Like, post=bobs_post) == 0
    assert await socket.receive_nothing()
    await socket.disconnect()


def test_the_notifications_page_marks_all_read(bob: User) -> None:
    Notification.objects.create(recipient=bob, kind="like", text="<i>liked</i>")
    client = Client()
    client.force_login(bob)
    assert b"&lt;i&gt;liked&lt;/i&gt;" in client.get("/notifications/").content
    assert client.post("/notifications/read/").status_code == 302
    assert not Notification.objects.filter(read=False).exists()


async def test_liking_again_after_unliking_does_not_notify_twice(
    alice: User, carol: User, bobs_post: Post, bob_session: str
) -> None:
    socket = await bobs_notifications(bob_session)
    client = await client_of(alice)
    await client.post(f"/posts/{bobs_post.pk}/like/")
    frame = await socket.receive_json_from()
    assert frame["data"] == {"post": bobs_post.pk, "liker": alice.pk, "likes": 1}
    await client.post(f"/posts/{bobs_post.pk}/like/")  # unlike
    await client.post(f"/posts/{bobs_post.pk}/like/")  # like again
    assert await count(Like, post=bobs_post) == 1
    assert await socket.receive_nothing()
    await (await client_of(carol)).post(f"/posts/{bobs_post.pk}/like/")  # someone else: told
    assert (await socket.receive_json_from())["data"]["likes"] == 2
    assert await count(Notification, kind="like") == 2
    await socket.disconnect()


async def test_a_comment_notification_carries_the_comment_for_the_open_post_page(
    alice: User, bobs_post: Post, bob_session: str
) -> None:
    socket = await bobs_notifications(bob_session)
    await (await client_of(alice)).post(f"/posts/{bobs_post.pk}/", {"text": "<i>nice</i>"})
    data = (await socket.receive_json_from())["data"]
    assert data["post"] == bobs_post.pk
    assert (data["comment"]["author"], data["comment"]["text"]) == ("alice", "<i>nice</i>")
    await socket.disconnect()


async def test_opening_the_conversation_reads_its_message_notifications(
    alice: User, carol: User, bob: User, bob_session: str
) -> None:
    await (await client_of(alice)).post("/messages/bob/", {"text": "one"})
    await (await client_of(alice)).post("/messages/bob/", {"text": "two"})
    await (await client_of(carol)).post("/messages/bob/", {"text": "from carol"})
    await database_sync_to_async(notify)(bob, "like", "someone likes your post")
    socket = await bobs_notifications(bob_session)
    response = await (await client_of(bob)).get("/messages/alice/")
    assert response.status_code == 200
    assert await socket.receive_json_from() == {"type": "unread", "count": 2}  # every tab
    unread = await database_sync_to_async(
        lambda: sorted(Notification.objects.filter(read=False).values_list("text", flat=True))
    )()
    assert unread == ["carol: from carol", "someone likes your post"]
    await socket.disconnect()


def test_an_unknown_page_is_the_sites_own_404(alice: User) -> None:
    client = Client()
    client.force_login(alice)
    for path in ("/messages/nobody/", "/posts/999/", "/no/such/page/"):
        response = client.get(path)
        assert response.status_code == 404
        content = response.content.decode()
        assert "Nothing here" in content
        assert 'id="notifications-link"' in content  # the site's header, logged in
        assert 'rel="icon"' in content


def test_the_favicon_is_found_where_browsers_look_for_it() -> None:
    response = Client().get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"] == "/static/demo/favicon.svg"
