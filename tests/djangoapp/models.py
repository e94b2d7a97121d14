"""Models the Django integration tests use."""

from __future__ import annotations

from django.db import models


class Note(models.Model):
    """A row written and read from consumers; its saves are broadcast by a signal."""

    text = models.CharField(max_length=200)

    def __str__(self) -> str:
        return self.text
