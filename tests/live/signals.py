"""Broadcast every ``Note`` save to the ``notes`` group, from sync code, as a project would."""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from django.db.models.signals import post_save

from channelworks.layers import get_channel_layer
from tests.djangoapp.models import Note
from tests.live.consumers import NOTES_GROUP

DISPATCH_UID = "tests.live.signals.announce_note"


def announce_note(sender: type[Note], instance: Note, created: bool, **kwargs: Any) -> None:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("the live tests need a channel layer")
    async_to_sync(layer.group_send)(NOTES_GROUP, {"type": "note.saved", "text": instance.text})


def connect() -> None:
    post_save.connect(announce_note, sender=Note, dispatch_uid=DISPATCH_UID)


def disconnect() -> None:
    post_save.disconnect(sender=Note, dispatch_uid=DISPATCH_UID)
