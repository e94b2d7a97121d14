"""Plain Django views over ``Note``: the live server runs them in its own thread."""

from __future__ import annotations

from django.db import connections
from django.http import HttpRequest, HttpResponse

from tests.djangoapp.models import Note


def notes(request: HttpRequest) -> HttpResponse:
    """GET: the notes, one per line. POST ``text=…``: save a note (which signals are told of)."""
    if request.method == "POST":
        Note.objects.create(text=request.POST["text"])
        return HttpResponse("created", status=201)
    return HttpResponse("\n".join(Note.objects.order_by("pk").values_list("text", flat=True)))


def connection_id(request: HttpRequest) -> HttpResponse:
    """The identity of the ``default`` connection object the view's thread uses."""
    return HttpResponse(str(id(connections["default"])))
