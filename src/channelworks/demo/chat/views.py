from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render

from channelworks.demo.chat.forms import RoomForm
from channelworks.demo.chat.models import Message, Room, RoomRead
from channelworks.demo.chat.topics import room_topic
from channelworks.demo.requests import AuthenticatedRequest
from channelworks.demo.resume import topic_position

#: messages a room page shows from the history, and each "older" page adds; newer ones
#: arrive over the socket
HISTORY = 50
#: the most messages a page catches up with from the database (``?after=``); more: it reloads
CATCH_UP = 200


@login_required
def room_list(request: AuthenticatedRequest) -> HttpResponse:
    form = RoomForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        room = form.save()
        if room.is_private:
            room.members.add(request.user)
        return redirect(room)
    rooms = with_unread(request.user, Room.objects.visible_to(request.user))
    return render(request, "chat/room_list.html", {"rooms": rooms, "form": form})


def with_unread(user: Any, rooms: Iterable[Room]) -> list[Room]:
    """``rooms``, each with ``unread``: the messages of others after what ``user`` has read
    there (all of them in a room never opened). One query per room: a demo has a few."""
    reads = dict(RoomRead.objects.filter(user=user).values_list("room_id", "last_read"))
    listed = list(rooms)
    for room in listed:
        newer = room.messages.filter(pk__gt=reads.get(room.pk, 0)).exclude(author=user)
        room.unread = newer.count()  # type: ignore[attr-defined]
    return listed


def page_of(room: Room, before: int | None) -> dict[str, object]:
    """The ``HISTORY`` messages of ``room`` before id ``before`` (the newest if ``None``),
    oldest first, and whether there are older ones."""
    messages = room.messages.select_related("author__avatar").order_by("-id")
    if before is not None:
        messages = messages.filter(pk__lt=before)
    latest = list(messages[: HISTORY + 1])
    return {
        "messages": [message.as_event() for message in reversed(latest[:HISTORY])],
        "more": len(latest) > HISTORY,
    }


@login_required
def room_detail(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    # A private room the user may not see is "missing" too: its name is not theirs to know.
    room = Room.objects.visible_to(request.user).filter(slug=slug).first()
    if room is None:
        return render(request, "chat/room_missing.html", {"slug": slug}, status=404)
    # Where the room's log stands, read before its messages: the page joins the room's topic
    # from there, and what is sent meanwhile is replayed (chat.js skips what it shows).
    position = topic_position(room_topic(room.slug))
    history = page_of(room, None)
    if history["messages"]:  # the page shows them: read
        RoomRead.mark(request.user, room, history["messages"][-1]["id"])  # type: ignore[index]
    context = {
        "room": room,
        "rooms": with_unread(request.user, Room.objects.visible_to(request.user)),
        "history": history,
        "position": position,
        "max_length": Message.MAX_LENGTH,
    }
    return render(request, "chat/room.html", context)


def messages_after(room: Room, after: int) -> dict[str, object]:
    """The first ``CATCH_UP`` messages of ``room`` after id ``after``, oldest first, and
    whether there are more."""
    newer = room.messages.filter(pk__gt=after).select_related("author__avatar").order_by("id")
    found = list(newer[: CATCH_UP + 1])
    return {"messages": [m.as_event() for m in found[:CATCH_UP]], "more": len(found) > CATCH_UP}


def as_id(value: str) -> int | None:
    return int(value) if value.isascii() and value.isdigit() and int(value) < 2**63 else None


@login_required
def room_messages(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    """As JSON: ``?before=<id>``, the page of messages before that one (the room page loads
    older history with it as the user scrolls up); ``?after=<id>``, the messages after it, at
    most ``CATCH_UP`` (a page whose topic could not resume catches up with it)."""
    room = Room.objects.visible_to(request.user).filter(slug=slug).first()
    if room is None:
        return JsonResponse({"error": "no such room"}, status=404)
    if "after" in request.GET:
        after = as_id(request.GET["after"])
        if after is None:
            return JsonResponse({"error": "after must be a message id or 0"}, status=400)
        return JsonResponse(messages_after(room, after))
    before = as_id(request.GET.get("before", ""))
    if not before:
        return JsonResponse({"error": "before must be a message id"}, status=400)
    return JsonResponse(page_of(room, before))
