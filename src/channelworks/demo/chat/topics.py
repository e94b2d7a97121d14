"""The room pages' topics on the site's topics socket (``/ws/topics/``). (``chat:``, not
``room:``: topic classes are found by pattern in the whole process, and the topics tutorial
and tests use ``room:{slug}`` for rooms of their own.)

``chat:<slug>``: a logged-in user who may see the room joins it and is tracked in its presence
under their user name, once per tab (``Channelworks.Presence`` in the page lists each user
once, with their tabs as metas). Pushes:

- ``message`` ``{"text": ...}``: validated (``forms.MessageForm``; an error reply with the
  ``reason`` ``required``/``max_length``/``invalid`` and a ``message`` otherwise), saved,
  then broadcast to the room as ``message`` (the message as ``Message.as_event`` has it)
  *with history*: a page that reconnects joins with the position of the last message it got
  and gets what it missed, or ``recovered: false`` (it then reads the database:
  ``views.room_messages``). The reply is ``{"id": ...}``. The log is named after the room's
  address and outlives the room: ``forms.check_slug_unused`` keeps a new room off it. The
  room's ``activity:<slug>`` hears of it too.
- ``typing``: broadcast as ``{"user": name}``, without history (it is stale in seconds).
- ``read`` ``{"id": n}``: the page showed the room up to message ``n`` (``RoomRead``: the
  room lists' unread counts start after it).

``activity:<slug>``: the same users may join it to hear ``message`` (``{"id", "author"}``)
for each new message of the room, and push ``unread`` for the count to start from: the room
lists count what is unread in the rooms one is not looking at.

Who may see a room can change while its pages are open (``signals.py``): the sockets are then
told to leave (``topics.kick``, reason ``recheck``) and the page joins again, which asks the
database; a user who may no longer see the room is refused (``not_found``). A join is in the
topic's group *before* it asks, so a change committed while it asks reaches it too.
"""

from __future__ import annotations

import time
from typing import Any

from channelworks.db import database_sync_to_async
from channelworks.demo.chat.forms import MessageForm
from channelworks.demo.chat.models import Message, Room, RoomRead, avatar_url
from channelworks.topics import JoinRefused, Reply, Topic, abroadcast

#: the largest id a database integer holds
MAX_ID = 2**63 - 1


@database_sync_to_async
def may_see(user: Any, slug: str) -> tuple[bool, str]:
    """Whether ``user`` may see the room ``slug``, and their avatar's URL."""
    visible = Room.objects.visible_to(user).filter(slug=slug).exists()
    return visible, avatar_url(user) if visible else ""


async def require_visible(topic: Topic) -> str:
    """Refuse the join unless the user may see the topic's room; their avatar's URL.

    The socket is in the topic's group before the database is asked: a change of who may see
    the room committed meanwhile is a kick (signals.py) that reaches it once it has joined.
    A join that fails after this leaves the group again (``leave_group``)."""
    user = topic.user
    if user is None or not user.is_authenticated:
        raise JoinRefused("login_required")
    layer, channel = topic.socket.channel_layer, topic.socket.channel_name
    assert layer is not None  # the topics socket refuses sockets without one
    assert channel is not None
    await layer.group_add(topic.group, channel)
    try:
        visible, avatar = await may_see(user, topic.params["slug"])
        if not visible:
            raise JoinRefused("not_found")  # a private room is "missing" to non-members
    except BaseException:
        await leave_group(topic)
        raise
    return avatar


async def leave_group(topic: Topic) -> None:
    """Undo ``require_visible``'s ``group_add`` for a join that does not happen (the topics
    socket leaves the groups of the topics it joined, not of those it refused)."""
    layer, channel = topic.socket.channel_layer, topic.socket.channel_name
    if layer is not None and channel is not None:
        await layer.group_discard(topic.group, channel)


@database_sync_to_async
def save_message(slug: str, user: Any, text: str) -> dict[str, Any] | None:
    room = Room.objects.filter(slug=slug).first()
    if room is None:  # deleted meanwhile: its sockets are being told
        return None
    return Message.objects.create(room=room, author=user, text=text).as_event()


@database_sync_to_async
def mark_read(user: Any, slug: str, message_id: int) -> None:
    """``user`` was shown ``slug`` up to ``message_id`` (never past its newest message)."""
    room = Room.objects.filter(slug=slug).first()
    if room is None:
        return
    newest = room.messages.order_by("-id").values_list("id", flat=True).first() or 0
    RoomRead.mark(user, room, min(message_id, newest))


def error(code: str, message: str) -> Reply:
    return Reply.error({"reason": code, "message": message})


class RoomTopic(Topic):
    pattern = "chat:{slug}"
    presence = True
    # the last 100 messages, for pages that reconnect (more missed: they read the database)
    history = {"size": 100, "ttl": 3600}  # noqa: RUF012  (Topic declares it a ClassVar)

    async def join(self, params: dict[str, Any]) -> dict[str, Any] | None:
        avatar = await require_visible(self)
        self.username: str = self.user.get_username()
        try:
            await self.track(self.username, {"avatar": avatar, "online_at": time.time()})
        except BaseException:
            await leave_group(self)
            raise
        return {"user": self.username}

    async def handle_in(self, event: str, payload: dict[str, Any]) -> dict[str, Any] | Reply | None:
        if event == "message":
            return await self.post(payload)
        if event == "typing":
            typing = {"user": self.username}
            layer = self.socket.channel_layer
            await abroadcast(self.name, "typing", typing, layer=layer, history=False)
            return {}
        if event == "read":
            read = payload.get("id")
            if type(read) is not int or not 0 < read <= MAX_ID:  # type(...): True is an int
                return error("invalid", "Send {id: the newest message shown}.")
            await mark_read(self.user, self.params["slug"], read)
            return {}
        return await super().handle_in(event, payload)

    async def post(self, payload: dict[str, Any]) -> dict[str, Any] | Reply:
        text = payload.get("text")
        if text is not None and not isinstance(text, str):  # a form would save str(text)
            return error("invalid", "Send {text: the message, a string}.")
        form = MessageForm({"text": text})
        if not form.is_valid():
            for errors in form.errors.as_data().values():
                return error(errors[0].code or "invalid", " ".join(errors[0].messages))
        slug = self.params["slug"]
        message = await save_message(slug, self.user, form.cleaned_data["text"])
        if message is None:
            return error("not_found", "This room is gone.")
        await self.broadcast("message", message)
        activity = {"id": message["id"], "author": message["author"]}
        await abroadcast(activity_topic(slug), "message", activity, layer=self.socket.channel_layer)
        return {"id": message["id"]}


class ActivityTopic(Topic):
    pattern = "activity:{slug}"

    async def join(self, params: dict[str, Any]) -> dict[str, Any] | None:
        await require_visible(self)
        return {}

    async def handle_in(self, event: str, payload: dict[str, Any]) -> dict[str, Any] | Reply | None:
        # The count a page starts from, asked once joined: the socket is in the topic's group
        # by then, so a message is in this count or arrives after it (with a larger id than
        # "newest"), or both (the page then ignores it) — never neither.
        if event == "unread":
            return await unread_in(self.user, self.params["slug"])
        return await super().handle_in(event, payload)


@database_sync_to_async
def unread_in(user: Any, slug: str) -> dict[str, int]:
    """``{"unread": n, "newest": id}``: what ``user`` has not read in the room ``slug``."""
    room = Room.objects.get(slug=slug)
    read = RoomRead.objects.filter(user=user, room=room).values_list("last_read", flat=True)
    newer = room.messages.filter(pk__gt=read.first() or 0).exclude(author=user)
    newest = room.messages.order_by("-id").values_list("id", flat=True).first() or 0
    return {"unread": newer.count(), "newest": newest}


def room_topic(slug: str) -> str:
    return f"chat:{slug}"


def activity_topic(slug: str) -> str:
    return f"activity:{slug}"
