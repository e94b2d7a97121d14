"""Plain Django views of the test project."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse


def whoami(request: HttpRequest) -> HttpResponse:
    user = request.user
    return HttpResponse(user.get_username() if user.is_authenticated else "anonymous")
