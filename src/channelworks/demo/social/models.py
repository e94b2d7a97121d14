from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse

#: the longest direct message, post or comment accepted, in characters
MAX_TEXT = 2000


class Notification(models.Model):
    """Something that happened to ``recipient``; stored, so the badge survives a reload."""

    class Kind(models.TextChoices):
        MESSAGE = "message", "direct message"
        COMMENT = "comment", "comment on your post"
        LIKE = "like", "like of your post"
        THUMBNAIL = "thumbnail", "avatar thumbnail"

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    text = models.CharField(max_length=200)
    url = models.CharField(max_length=200, blank=True)
    #: what the page needs beyond the text (the sender of a message, a thumbnail's URL)
    data = models.JSONField(default=dict, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    read = models.BooleanField(default=False)

    class Meta:
        ordering = ("-created", "-id")
        indexes = (models.Index(fields=["recipient", "read"]),)

    def __str__(self) -> str:
        return f"to {self.recipient}: {self.text}"

    def as_event(self) -> dict[str, Any]:
        return {
            "id": self.pk,
            "kind": self.kind,
            "text": self.text,
            "url": self.url,
            "data": self.data,
            "created": self.created.isoformat(),
        }


class DirectMessage(models.Model):
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sent_messages"
    )
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="received_messages"
    )
    text = models.TextField(max_length=MAX_TEXT)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("created", "id")

    def __str__(self) -> str:
        return f"{self.sender} to {self.recipient}: {self.text[:40]}"

    @classmethod
    def between(cls, one: Any, other: Any) -> models.QuerySet[DirectMessage]:
        """The conversation of two users, oldest first, with the senders."""
        return cls.objects.filter(
            Q(sender=one, recipient=other) | Q(sender=other, recipient=one)
        ).select_related("sender")


class Post(models.Model):
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="posts"
    )
    text = models.TextField(max_length=MAX_TEXT)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created", "-id")

    def __str__(self) -> str:
        return f"{self.author}: {self.text[:40]}"

    def get_absolute_url(self) -> str:
        return reverse("social:post", args=[self.pk])


class Comment(models.Model):
    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    text = models.TextField(max_length=MAX_TEXT)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("created", "id")

    def __str__(self) -> str:
        return f"{self.author} on {self.post_id}: {self.text[:40]}"

    def as_event(self) -> dict[str, Any]:
        return {
            "id": self.pk,
            "author": self.author.get_username(),
            "text": self.text,
            "created": self.created.isoformat(),
        }


class Like(models.Model):
    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="likes")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = (models.UniqueConstraint(fields=["post", "user"], name="one_like_per_user"),)

    def __str__(self) -> str:
        return f"{self.user} likes {self.post_id}"
