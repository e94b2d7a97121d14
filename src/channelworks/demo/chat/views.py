from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render

from channelworks.demo.chat.forms import RoomForm
from channelworks.demo.chat.models import Message, Room, RoomRead
from channelworks.demo.requests import AuthenticatedRequest

#: messages a room page shows from the history, and each "older" page adds; newer ones
#: arrive over the socket
HISTORY = 50


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
    history = page_of(room, None)
    if history["messages"]:  # the page shows them: read
        RoomRead.mark(request.user, room, history["messages"][-1]["id"])  # type: ignore[index]
    context = {
        "room": room,
        "rooms": with_unread(request.user, Room.objects.visible_to(request.user)),
        "history": history,
        "max_length": Message.MAX_LENGTH,
    }
    return render(request, "chat/room.html", context)


@login_required
def room_messages(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    """``?before=<id>``: the page of messages before that one, as JSON (the room page loads
    older history with it as the user scrolls up)."""
    room = Room.objects.visible_to(request.user).filter(slug=slug).first()
    if room is None:
        return JsonResponse({"error": "no such room"}, status=404)
    before = request.GET.get("before", "")
    if not (before.isascii() and before.isdigit() and 0 < int(before) < 2**63):
        return JsonResponse({"error": "before must be a message id"}, status=400)
    return JsonResponse(page_of(room, int(before)))
