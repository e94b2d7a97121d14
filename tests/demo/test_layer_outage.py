"""A channel layer that cannot be reached (Redis down) never fails a change that committed:
the live update is logged and lost, the change is saved (blog, notifications, chat rooms)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import transaction

from channelworks.demo.blog.models import Entry
from channelworks.demo.social.models import Notification
from channelworks.demo.social.notify import mark_read, notify
from channelworks.layers import InMemoryChannelLayer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def layer_down(channel_layer: InMemoryChannelLayer, monkeypatch: pytest.MonkeyPatch) -> None:
    async def refused(group: str, message: Any, **options: Any) -> None:
        raise ConnectionError("Redis is unavailable")

    monkeypatch.setattr(channel_layer, "group_send", refused)


@pytest.mark.usefixtures("layer_down")
def test_blog_entries_and_notifications_are_saved_and_the_failure_logged(
    alice: User, bob: User, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR), transaction.atomic():  # as a view or the admin
        entry = Entry.objects.create(title="Live", body="still saved")
        notify(bob, "message", "alice wrote to you", url="/")
    assert Entry.objects.filter(pk=entry.pk).exists()
    assert Notification.objects.filter(recipient=bob).count() == 1
    assert mark_read(bob.pk) == 1  # its push fails too, after the update committed
    assert not Notification.objects.filter(recipient=bob, read=False).exists()
    assert "Redis is unavailable" in caplog.text
