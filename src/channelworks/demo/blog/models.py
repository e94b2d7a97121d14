from __future__ import annotations

from typing import Any

from django.db import models


class Entry(models.Model):
    title = models.CharField(max_length=120)
    body = models.TextField(max_length=5000)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created", "-id")
        verbose_name_plural = "entries"

    def __str__(self) -> str:
        return self.title

    def as_event(self) -> dict[str, Any]:
        return {
            "id": self.pk,
            "title": self.title,
            "body": self.body,
            "created": self.created.isoformat(),
            "updated": self.updated.isoformat(),
        }
