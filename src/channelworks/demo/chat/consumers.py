"""The chat socket: one per open room page, in the room's group.

A frame ``{"type": "message", "text": "..."}`` is validated, saved, then sent to the group;
every socket of the room (this one included) shows it from the group message, which the layer
keeps in the room's history. Bad input gets
an error frame and the socket stays open; a socket that may not be here is closed with a code
from ``channelworks.demo.codes``, at once, or later when the room changes (signals.py: a
member removed, the room made private, moved or deleted).

Nothing sent while a page was away is missed (``resume.py``): the page connects with the
position of the last message it got (``?offset=&epoch=``) and the id of the last message it
shows (``?after=``). Once accepted, the socket replays the missed messages from the room's
log; when the log cannot continue from that position (the in-memory layer restarted with the
server, or too much was missed) it sends the messages after ``after`` from the database, or
tells the page to reload when they are more than ``CATCH_UP``. Then a ``{"type": "resumed",
"source": "log" | "database" | "reload", "position": ...}`` frame. The page ignores a message
whose id it shows already: one sent while the socket connects can come both ways.
"""

from __future__ import annotations

from typing import Any

from channelworks.consumers import AsyncJsonWebsocketConsumer
from channelworks.consumers.resume import GroupResume
from channelworks.db import database_sync_to_async
from channelworks.demo import codes
from channelworks.demo.chat.forms import MessageForm
from channelworks.demo.chat.models import Message, Room, RoomRead
from channelworks.demo.chat.topics import activity_topic
from channelworks.demo.frames import error_frame, form_error_frame
from channelworks.demo.resume import id_of, position_of, send_kept
from channelworks.layers.history import POSITION_KEY
from channelworks.topics import abroadcast

#: the most messages a reconnecting page gets from the database; with more it reloads
CATCH_UP = 200


@database_sync_to_async
def find_room(slug: str, user: Any) -> tuple[Room | None, bool]:
    """The room of ``slug`` (or ``None``) and whether ``user`` may see it."""
    room = Room.objects.filter(slug=slug).first()
    if room is None:
        return None, False
    return room, Room.objects.visible_to(user).filter(pk=room.pk).exists()


@database_sync_to_async
def messages_after(room: Room, after: int, limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` messages of ``room`` after id ``after``, oldest first."""
    newer = room.messages.filter(pk__gt=after).select_related("author__avatar")
    return [message.as_event() for message in newer.order_by("id")[:limit]]


@database_sync_to_async
def mark_read(user: Any, room: Room, message_id: int) -> None:
    RoomRead.mark(user, room, message_id)


@database_sync_to_async
def save_message(room: Room, user: Any, text: str) -> dict[str, Any]:
    return Message.objects.create(room=room, author=user, text=text).as_event()


class ChatConsumer(GroupResume, AsyncJsonWebsocketConsumer):
    room: Room | None = None
    #: the newest message this socket sent its page: read, when the socket closes
    newest = 0

    async def connect(self) -> None:
        user = self.scope["user"]
        if not user.is_authenticated:
            await self.refuse(codes.LOGIN_REQUIRED, "log in to chat")
            return
        slug = self.scope["url_route"]["kwargs"]["slug"]
        # In the room's group before asking who may be there: a change committed meanwhile
        # (signals.py) then reaches this socket, after this handler, and it asks again.
        await self.join_groups([Room(slug=slug).group_name])  # left when the socket closes
        room, visible = await find_room(slug, user)
        if room is None:
            await self.refuse(codes.NOT_FOUND, "no such room")
        elif not visible:
            await self.refuse(codes.FORBIDDEN, "this room is private")
        else:
            self.room = room
            await self.accept()
            await self.catch_up(room)

    async def catch_up(self, room: Room) -> None:
        """Send what the page missed (see the module), then the ``resumed`` frame."""
        since = position_of(self.scope)
        resumed = await self.resume_group(room.group_name, since=since)
        position = resumed.as_dict()["position"]
        if since is not None and resumed.recovered:
            await self.send_json(
                {"type": "resumed", "source": "log", "missed": resumed.missed, "position": position}
            )
            return
        after = id_of(self.scope, "after")
        missed = [] if after is None else await messages_after(room, after, CATCH_UP + 1)
        if len(missed) > CATCH_UP:
            await self.send_json(
                {"type": "resumed", "source": "reload", "missed": len(missed), "position": position}
            )
            return
        for message in missed:
            self.newest = max(self.newest, message["id"])
            await self.send_json({"type": "message", **message, "position": None})
        await self.send_json(
            {"type": "resumed", "source": "database", "missed": len(missed), "position": position}
        )

    async def refuse(self, code: int, reason: str) -> None:
        # Accept, then close: a browser sees the code and reason of a close after the
        # handshake, but only a bare 1006 for a handshake that was refused.
        await self.accept()
        await self.close(code, reason)

    async def receive_json(self, content: Any) -> None:
        if self.room is None:  # frames that raced the close of a refused socket
            return
        if not isinstance(content, dict) or content.get("type") != "message":
            await self.send_json(error_frame("unknown", 'Send {"type": "message", "text": ...}.'))
            return
        form = MessageForm({"text": content.get("text")})
        if not form.is_valid():
            await self.send_json(form_error_frame(form))
            return
        message = await save_message(self.room, self.scope["user"], form.cleaned_data["text"])
        assert self.channel_layer is not None  # settings.CHANNEL_LAYERS always has one here
        event = {"type": "chat.message", "message": message}
        await send_kept(self.channel_layer, self.room.group_name, event)
        activity = {"id": message["id"], "author": message["author"]}
        await abroadcast(activity_topic(self.room.slug), "message", activity)

    async def chat_message(self, event: dict[str, Any]) -> None:
        if self.room is not None:  # not to a socket closing because it may not stay
            self.newest = max(self.newest, event["message"]["id"])
            position = event.get(POSITION_KEY)
            await self.send_json({"type": "message", **event["message"], "position": position})

    async def disconnect(self, code: int) -> None:
        """What the page was shown is read (the room lists' unread counts start after it)."""
        if self.room is not None and self.newest:
            await mark_read(self.scope["user"], self.room, self.newest)

    async def room_changed(self, event: dict[str, Any]) -> None:
        """Who may see the room changed (signals.py): close this socket if its user may not."""
        if self.room is None:
            return
        room, visible = await find_room(self.room.slug, self.scope["user"])
        if room is None or room.pk != self.room.pk:  # deleted, or moved to another address
            self.room = None
            await self.close(codes.NOT_FOUND, "no such room")
        elif not visible:
            self.room = None
            await self.close(codes.FORBIDDEN, "this room is private")
