"""Who may be in a room changes while its sockets are open: each change reaches them.

A member removed from a private room (``members.remove``/``set``/``clear``, from either
side: the admin does this), a user deleted, a public room made private, a room moved to
another address or deleted: the room's group gets ``room.changed`` once the transaction
commits, and every open socket of the room checks again whether its user may stay
(``ChatConsumer.room_changed``). The event says nothing about who: a socket asks the
database, so a message cannot grant anyone access.

Not covered (Django sends no signal for them): ``QuerySet.update()`` of rooms, and rows of
the membership table deleted directly (``Room.members.through.objects...delete()``). The
room's sockets are checked again at the next change that does send one.

An announcement that cannot reach the channel layer (Redis down) is logged, never raised:
the change has been committed by then (``on_commit(..., robust=True)``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete, pre_save
from django.dispatch import receiver

from channelworks.demo.chat.models import Room
from channelworks.layers import get_channel_layer


def announce(group: str) -> None:
    """Tell the open sockets of the room whose group is ``group`` to check again."""
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(group, {"type": "room.changed"})


def announce_on_commit(groups: set[str]) -> None:
    for group in sorted(groups):
        transaction.on_commit(_announcer(group), robust=True)


def _announcer(group: str) -> Callable[[], None]:
    def announce_room_changed() -> None:  # named: a robust on_commit logs its failure by name
        announce(group)

    return announce_room_changed


def groups_of(rooms: Any) -> set[str]:
    return {Room(slug=slug).group_name for slug in rooms.values_list("slug", flat=True)}


@receiver(m2m_changed, sender=Room.members.through)
def members_changed(sender: Any, instance: Any, action: str, reverse: bool, **kwargs: Any) -> None:
    # Who is added may come in: nobody open needs telling. Removals: after the fact, with the
    # rooms named; a clear: before, while the rooms to tell can still be read.
    if action == "post_remove":
        if reverse:  # rooms taken from a user (user.private_rooms.remove(...))
            announce_on_commit(groups_of(Room.objects.filter(pk__in=kwargs["pk_set"])))
        else:
            announce_on_commit({instance.group_name})
    elif action == "pre_clear":
        if reverse:  # user.private_rooms.clear()
            announce_on_commit(groups_of(instance.private_rooms.all()))
        else:
            announce_on_commit({instance.group_name})


@receiver(pre_delete, sender=settings.AUTH_USER_MODEL)
def user_deleting(sender: Any, instance: Any, **kwargs: Any) -> None:
    # Their memberships go by cascade, which sends no m2m_changed.
    announce_on_commit(groups_of(instance.private_rooms.all()))


#: where ``pre_save`` leaves the group a room had before the save (its slug may change)
_BEFORE = "_chat_group_before_save"


@receiver(pre_save, sender=Room)
def room_saving(sender: type[Room], instance: Room, **kwargs: Any) -> None:
    before = None
    if instance.pk is not None:
        old = Room.objects.filter(pk=instance.pk).values_list("slug", "is_private").first()
        if old is not None and (old[0] != instance.slug or (instance.is_private and not old[1])):
            before = Room(slug=old[0]).group_name  # moved, or made private: tell its sockets
    setattr(instance, _BEFORE, before)


@receiver(post_save, sender=Room)
def room_saved(sender: type[Room], instance: Room, created: bool, **kwargs: Any) -> None:
    before = getattr(instance, _BEFORE, None)
    if before is not None:  # the sockets that are open are in the group it had
        announce_on_commit({before})


@receiver(post_delete, sender=Room)
def room_deleted(sender: type[Room], instance: Room, **kwargs: Any) -> None:
    announce_on_commit({instance.group_name})
