"""Rooms and their messages. Every message is a row: the history is the database's."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.db import models
from django.db.models import Q
from django.urls import reverse


class RoomQuerySet(models.QuerySet["Room"]):
    def visible_to(self, user: Any) -> RoomQuerySet:
        """The public rooms, and the private ones ``user`` is a member of."""
        if not user.is_authenticated:
            return self.filter(is_private=False)
        return self.filter(Q(is_private=False) | Q(members=user)).distinct()


class Room(models.Model):
    name = models.CharField(max_length=60, unique=True)
    slug = models.SlugField(max_length=60, unique=True)
    is_private = models.BooleanField(
        default=False, help_text="Only members see a private room and its messages."
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="private_rooms"
    )
    created = models.DateTimeField(auto_now_add=True)

    objects = RoomQuerySet.as_manager()

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("chat:room", args=[self.slug])


class Message(models.Model):
    #: the longest message accepted, in characters
    MAX_LENGTH = 2000

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    text = models.TextField(max_length=MAX_LENGTH)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("created", "id")

    def __str__(self) -> str:
        return f"{self.author} in {self.room}: {self.text[:40]}"

    def as_event(self) -> dict[str, Any]:
        """The message as the browser gets it (plain text: the page escapes it)."""
        return {
            "id": self.pk,
            "author": self.author.get_username(),
            "avatar": avatar_url(self.author),
            "text": self.text,
            "created": self.created.isoformat(),
        }


def avatar_url(user: Any) -> str:
    """The URL of ``user``'s avatar thumbnail, or "" (the page then draws their initial).
    Select ``author__avatar`` with a list of messages, or this asks once per message."""
    try:
        avatar = user.avatar
    except ObjectDoesNotExist:
        return ""
    return avatar.thumbnail.url if avatar.thumbnail else ""


class RoomRead(models.Model):
    """How far ``user`` has read ``room``: the id of the newest message they were shown. The
    room pages' unread counts are the messages of others after it."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="reads")
    last_read = models.BigIntegerField(default=0)

    class Meta:
        constraints = (models.UniqueConstraint(fields=["user", "room"], name="one_read_per_room"),)

    def __str__(self) -> str:
        return f"{self.user} read {self.room} up to {self.last_read}"

    @classmethod
    def mark(cls, user: Any, room: Room, message_id: int) -> None:
        """``user`` has seen ``room`` up to ``message_id`` (never moves back)."""
        read, _ = cls.objects.get_or_create(user=user, room=room)
        if message_id > read.last_read:
            cls.objects.filter(pk=read.pk, last_read__lt=message_id).update(last_read=message_id)
