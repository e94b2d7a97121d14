"""Who may be in a room changes while its sockets are open: each change reaches them.

A member removed from a private room (the admin, the shell), a public room made private, a
room renamed to another address or deleted: the room's group gets ``room.changed`` once the
transaction commits, and every open socket of the room checks again whether its user may
stay (``ChatConsumer.room_changed``). The event says nothing about who: a socket asks the
database, so a message cannot grant anyone access.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save
from django.dispatch import receiver

from channelworks.demo.chat.models import Room
from channelworks.layers import get_channel_layer


def announce(group: str) -> None:
    """Tell the open sockets of the room whose group is ``group`` to check again."""
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(group, {"type": "room.changed"})


def announce_on_commit(room: Room) -> None:
    group = room.group_name  # now: a deleted room or a new slug must not change it later
    transaction.on_commit(lambda: announce(group))


@receiver(m2m_changed, sender=Room.members.through)
def members_changed(sender: Any, instance: Any, action: str, reverse: bool, **kwargs: Any) -> None:
    if action not in ("post_remove", "post_clear"):
        return  # who is added may come in; nobody open needs telling
    if reverse:  # rooms taken from a user (user.private_rooms.remove(...))
        pk_set = kwargs.get("pk_set")
        rooms = Room.objects.filter(pk__in=pk_set) if pk_set else Room.objects.all()
        for room in rooms:
            announce_on_commit(room)
    else:
        announce_on_commit(instance)


#: where ``pre_save`` leaves the group a room had before the save (its slug may change)
_BEFORE = "_chat_group_before_save"


@receiver(pre_save, sender=Room)
def room_saving(sender: type[Room], instance: Room, **kwargs: Any) -> None:
    before = Room.objects.filter(pk=instance.pk).first() if instance.pk is not None else None
    setattr(instance, _BEFORE, before.group_name if before is not None else None)


@receiver(post_save, sender=Room)
def room_saved(sender: type[Room], instance: Room, created: bool, **kwargs: Any) -> None:
    before = getattr(instance, _BEFORE, None)
    if before is not None:  # the sockets that are open are in the group it had
        transaction.on_commit(lambda: announce(before))


@receiver(post_delete, sender=Room)
def room_deleted(sender: type[Room], instance: Room, **kwargs: Any) -> None:
    announce_on_commit(instance)
