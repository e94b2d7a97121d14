"""Every save or delete of an ``Entry`` — from a form, the admin, the shell — reaches the open
live blog pages through the topic ``liveblog`` (``topics.py``).

Receivers are sync code: ``broadcast`` runs the layer's coroutine. The message goes out once
the transaction commits, so a rolled-back save is never shown; one that cannot reach the
layer (Redis down) is logged, not raised: the save has been committed by then. The topic
keeps a history, so a page that was reconnecting meanwhile gets the event later.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from channelworks.demo.blog.models import Entry
from channelworks.demo.blog.topics import TOPIC
from channelworks.topics import broadcast


def tell_pages(event: str, payload: dict[str, Any]) -> None:
    def broadcast_entry() -> None:  # named: a robust on_commit logs its failure by name
        broadcast(TOPIC, event, payload)

    transaction.on_commit(broadcast_entry, robust=True)


@receiver(post_save, sender=Entry)
def entry_saved(sender: type[Entry], instance: Entry, created: bool, **kwargs: Any) -> None:
    tell_pages("created" if created else "updated", {"entry": instance.as_event()})


@receiver(post_delete, sender=Entry)
def entry_deleted(sender: type[Entry], instance: Entry, **kwargs: Any) -> None:
    tell_pages("deleted", {"id": instance.pk})
