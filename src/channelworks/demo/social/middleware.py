"""Note each page's notification cursor before its view reads anything (``topics.py``)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from channelworks.demo.social.notify import latest_id


class NotificationCursorMiddleware:
    """Sets ``request.notifications_since`` for a logged-in user: ``base.html`` gives it to
    the page (notifications.js), which catches up with what came after it. Read before the
    view, so that whatever the view shows was read after it: nothing falls between the two."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            request.notifications_since = latest_id(request.user.pk)  # type: ignore[attr-defined]
        return self.get_response(request)
