"""Notify a user: store a ``Notification`` and push it to every page they have open (the
topic ``notifications:<user id>``, ``topics.NotificationsTopic``).

Call these from sync code (views, model signals, sync consumers): they use the ORM, and
reach the channel layer through ``async_to_sync``. The push waits for the transaction to
commit, so a page never hears of a row that was rolled back.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Max

from channelworks.demo.social.models import Notification
from channelworks.topics import broadcast


def user_topic(user_id: int) -> str:
    """The topic every page of ``user_id`` joins (``topics.NotificationsTopic``)."""
    return f"notifications:{user_id}"


#: the most notifications a page catches up with when its socket opens (the newest ones)
CATCH_UP = 20


def unread_count(user_id: int) -> int:
    return Notification.objects.filter(recipient_id=user_id, read=False).count()


def latest_id(user_id: int) -> int:
    """The id of ``user_id``'s newest notification (0: none yet), the page's cursor: a page
    made after reading it knows of that one and of those before."""
    latest: int | None = Notification.objects.filter(recipient_id=user_id).aggregate(
        latest=Max("id")
    )["latest"]
    return latest or 0


def catch_up(user_id: int, since: int) -> tuple[int, list[dict[str, Any]]]:
    """The unread count, and the notifications after the cursor ``since`` as events with
    ``read``, oldest first (the newest ``CATCH_UP``). Read ones too: another page of the user
    may have read one this page never got (its conversation page shows a direct message)."""
    newest = Notification.objects.filter(recipient_id=user_id, pk__gt=since).order_by("-id")
    missed = reversed(newest[:CATCH_UP])
    return unread_count(user_id), [{**n.as_event(), "read": n.read} for n in missed]


def notify(
    recipient: Any, kind: str, text: str, url: str = "", data: dict[str, Any] | None = None
) -> Notification:
    notification = Notification.objects.create(
        recipient=recipient, kind=kind, text=text[:200], url=url, data=data or {}
    )

    def push() -> None:
        payload = {**notification.as_event(), "unread": unread_count(recipient.pk)}
        broadcast(user_topic(recipient.pk), "notification", payload)

    transaction.on_commit(push, robust=True)
    return notification


def mark_read(user_id: int, ids: list[int] | None = None) -> int:
    """Mark ``user_id``'s notifications read (``ids``, or all); push the new unread count."""
    unread = Notification.objects.filter(recipient_id=user_id, read=False)
    if ids is not None:
        unread = unread.filter(pk__in=ids)
    changed = unread.update(read=True)
    count = unread_count(user_id)

    def push_unread() -> None:
        broadcast(user_topic(user_id), "unread", {"count": count})

    transaction.on_commit(push_unread, robust=True)
    return changed
