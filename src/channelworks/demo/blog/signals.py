"""Every save or delete of an ``Entry`` — from a form, the admin, the shell — reaches the open
live blog pages through the layer's ``liveblog`` group.

Receivers are sync code: ``async_to_sync`` runs the layer's coroutine. The message goes out
once the transaction commits, so a rolled-back save is never shown; one that cannot reach the
layer (Redis down) is logged, not raised: the save has been committed by then. The group keeps
a history (``resume.py``), so a page that was reconnecting meanwhile gets the event later.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from channelworks.demo.blog.models import Entry
from channelworks.demo.resume import send_kept
from channelworks.layers import get_channel_layer

GROUP = "liveblog"


def broadcast(event: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(send_kept)(layer, GROUP, event)


@receiver(post_save, sender=Entry)
def entry_saved(sender: type[Entry], instance: Entry, created: bool, **kwargs: Any) -> None:
    kind = "liveblog.entry.created" if created else "liveblog.entry.updated"
    event = {"type": kind, "entry": instance.as_event()}
    transaction.on_commit(lambda: broadcast(event), robust=True)


@receiver(post_delete, sender=Entry)
def entry_deleted(sender: type[Entry], instance: Entry, **kwargs: Any) -> None:
    event = {"type": "liveblog.entry.deleted", "id": instance.pk}
    transaction.on_commit(lambda: broadcast(event), robust=True)
