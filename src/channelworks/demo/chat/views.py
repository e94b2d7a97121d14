from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render

from channelworks.demo.chat.forms import RoomForm
from channelworks.demo.chat.models import Message, Room
from channelworks.demo.requests import AuthenticatedRequest

#: messages a room page shows from the history; newer ones arrive over the socket
HISTORY = 50


@login_required
def room_list(request: AuthenticatedRequest) -> HttpResponse:
    form = RoomForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        room = form.save()
        if room.is_private:
            room.members.add(request.user)
        return redirect(room)
    rooms = Room.objects.visible_to(request.user)
    return render(request, "chat/room_list.html", {"rooms": rooms, "form": form})


@login_required
def room_detail(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    # A private room the user may not see is "missing" too: its name is not theirs to know.
    room = Room.objects.visible_to(request.user).filter(slug=slug).first()
    if room is None:
        return render(request, "chat/room_missing.html", {"slug": slug}, status=404)
    latest = room.messages.select_related("author").order_by("-created", "-id")[:HISTORY]
    context = {
        "room": room,
        "history": reversed(latest),
        "max_length": Message.MAX_LENGTH,
    }
    return render(request, "chat/room.html", context)
