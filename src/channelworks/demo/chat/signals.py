"""Who may be in a room changes while its pages are open: each change reaches them.

A member removed from a private room (``members.remove``/``set``/``clear``, from either
side: the admin does this), a user deleted, a public room made private, a room moved to
another address or deleted: once the transaction commits, the sockets on the room's topics
(``chat:<slug>``, ``activity:<slug>``; ``topics.py``) are told to leave them
(``channelworks.topics.kick``, reason ``recheck``): those of the users concerned, or all of
them when the room itself changed. The page joins again at once, and the join asks the
database: a user who may no longer see the room is refused, the others are back (resumed
from their position, nothing missed). The kick says nothing about who may stay: a join asks
the database, so a message cannot grant anyone access.

Not covered (Django sends no signal for them): ``QuerySet.update()`` of rooms, and rows of
the membership table deleted directly (``Room.members.through.objects...delete()``). The
room's sockets are checked again at the next change that does send one.

A kick that cannot reach the channel layer (Redis down) is logged, never raised: the change
has been committed by then (``on_commit(..., robust=True)``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete, pre_save
from django.dispatch import receiver

from channelworks.demo.chat.models import Room
from channelworks.demo.chat.topics import activity_topic, room_topic
from channelworks.topics import kick

#: the reason of the kick: the pages join again, and the join asks the database
RECHECK = "recheck"


def recheck(slug: str, user_id: int | None = None) -> None:
    """Make the sockets of room ``slug`` (those of ``user_id``, or all) join it again."""
    for topic in (room_topic(slug), activity_topic(slug)):
        kick(topic, user_id=user_id, reason=RECHECK)


def recheck_on_commit(slugs: Iterable[str], user_ids: Iterable[int | None] = (None,)) -> None:
    for slug in sorted(set(slugs)):
        for user_id in user_ids:
            transaction.on_commit(_rechecker(slug, user_id), robust=True)


def _rechecker(slug: str, user_id: int | None) -> Callable[[], None]:
    def recheck_room_access() -> None:  # named: a robust on_commit logs its failure by name
        recheck(slug, user_id)

    return recheck_room_access


def slugs_of(rooms: Any) -> list[str]:
    return list(rooms.values_list("slug", flat=True))


@receiver(m2m_changed, sender=Room.members.through)
def members_changed(sender: Any, instance: Any, action: str, reverse: bool, **kwargs: Any) -> None:
    # Who is added may come in: nobody open needs telling. Removals: after the fact, with the
    # rooms named; a clear: before, while the rooms to tell can still be read.
    if action == "post_remove":
        if reverse:  # rooms taken from a user (user.private_rooms.remove(...))
            rooms = Room.objects.filter(pk__in=kwargs["pk_set"])
            recheck_on_commit(slugs_of(rooms), [instance.pk])
        else:
            recheck_on_commit([instance.slug], sorted(kwargs["pk_set"]))
    elif action == "pre_clear":
        if reverse:  # user.private_rooms.clear()
            recheck_on_commit(slugs_of(instance.private_rooms.all()), [instance.pk])
        else:
            members = instance.members.values_list("pk", flat=True)
            recheck_on_commit([instance.slug], sorted(members))


@receiver(pre_delete, sender=settings.AUTH_USER_MODEL)
def user_deleting(sender: Any, instance: Any, **kwargs: Any) -> None:
    # Their memberships go by cascade, which sends no m2m_changed.
    recheck_on_commit(slugs_of(instance.private_rooms.all()), [instance.pk])


#: where ``pre_save`` leaves the slug a room had before the save (it may change)
_BEFORE = "_chat_slug_before_save"


@receiver(pre_save, sender=Room)
def room_saving(sender: type[Room], instance: Room, **kwargs: Any) -> None:
    before = None
    if instance.pk is not None:
        old = Room.objects.filter(pk=instance.pk).values_list("slug", "is_private").first()
        if old is not None and (old[0] != instance.slug or (instance.is_private and not old[1])):
            before = old[0]  # moved, or made private: tell its sockets
    setattr(instance, _BEFORE, before)


@receiver(post_save, sender=Room)
def room_saved(sender: type[Room], instance: Room, created: bool, **kwargs: Any) -> None:
    before = getattr(instance, _BEFORE, None)
    if before is not None:  # the sockets that are open are on the topics it had
        recheck_on_commit([before])


@receiver(post_delete, sender=Room)
def room_deleted(sender: type[Room], instance: Room, **kwargs: Any) -> None:
    recheck_on_commit([instance.slug])
