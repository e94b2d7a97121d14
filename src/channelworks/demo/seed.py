"""The demo's starting data: a few users, rooms, messages, posts and live blog entries.

``seed()`` is safe to run on every start: it creates only what is missing and never resets a
password or duplicates a row.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction

from channelworks.demo.blog.models import Entry
from channelworks.demo.chat.models import Message, Room
from channelworks.demo.social.models import Post

#: the password of every seeded user (this is a local demo)
DEMO_PASSWORD = "channelworks"


@dataclass(frozen=True)
class SeedUser:
    username: str
    admin: bool = False


USERS = (SeedUser("alice", admin=True), SeedUser("bob"), SeedUser("carol"))


@transaction.atomic
def seed() -> None:
    User = get_user_model()
    users = {}
    for spec in USERS:
        user, created = User.objects.get_or_create(
            username=spec.username, defaults={"is_staff": spec.admin, "is_superuser": spec.admin}
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save()
        users[spec.username] = user

    general, created = Room.objects.get_or_create(slug="general", defaults={"name": "General"})
    if created:
        Message.objects.bulk_create(
            [
                Message(room=general, author=users["alice"], text="Welcome to the demo!"),
                Message(room=general, author=users["bob"], text="Messages here are saved."),
            ]
        )
    Room.objects.get_or_create(slug="random", defaults={"name": "Random"})
    backstage, created = Room.objects.get_or_create(
        slug="backstage", defaults={"name": "Backstage", "is_private": True}
    )
    if created:
        backstage.members.add(users["alice"], users["bob"])

    if not Post.objects.exists():
        Post.objects.create(author=users["bob"], text="My first post. Comment or like it!")
    if not Entry.objects.exists():
        # bulk_create sends no post_save: there is no page to tell before the server starts.
        Entry.objects.bulk_create(
            [
                Entry(title="The demo is live", body="Edit this entry in another tab."),
            ]
        )
