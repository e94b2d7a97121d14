"""The thumbnail worker: a consumer reached by channel name, not by a client.

``asgi.py`` routes the channel ``thumbnails-generate`` here with ``ChannelNameRouter``; a
``Worker`` (started with the server, see ``channelworks.demo.lifespan``, or
``manage.py runworker thumbnails-generate``) feeds it the messages the upload view sends. It
is a ``SyncConsumer``: Pillow and the ORM are blocking, so each message is handled in a thread.
"""

from __future__ import annotations

from typing import Any

from django.core.files.base import ContentFile
from django.urls import reverse

from channelworks.consumers import SyncConsumer
from channelworks.demo.social.models import Notification
from channelworks.demo.social.notify import notify
from channelworks.demo.thumbnails.images import make_thumbnail
from channelworks.demo.thumbnails.models import Avatar

#: the channel the upload view sends to and the worker reads
THUMBNAIL_CHANNEL = "thumbnails-generate"


class ThumbnailConsumer(SyncConsumer):
    def thumbnail_generate(self, message: dict[str, Any]) -> None:
        avatar = Avatar.objects.select_related("user").filter(pk=message["avatar_id"]).first()
        if avatar is None:  # deleted since the upload: nothing to do
            return
        url = reverse("thumbnails:avatar")
        try:
            with avatar.image.open("rb") as source:
                png = make_thumbnail(source.read())
        except OSError:
            if Avatar.objects.filter(pk=avatar.pk, image=avatar.image.name).exists():
                notify(
                    avatar.user, Notification.Kind.THUMBNAIL, "Your avatar could not be read", url
                )
            # else a newer upload replaced it (and its file) meanwhile: its own message follows
            return
        if avatar.thumbnail:
            avatar.thumbnail.delete(save=False)
        avatar.thumbnail.save(f"user-{avatar.user_id}.png", ContentFile(png), save=False)
        # Only the thumbnail: a whole-row save would put back the image read above over a
        # newer upload committed meanwhile (whose own message comes next).
        avatar.save(update_fields=["thumbnail", "updated"])
        notify(
            avatar.user,
            Notification.Kind.THUMBNAIL,
            "Your avatar thumbnail is ready",
            url,
            data={"thumbnail_url": avatar.thumbnail.url},
        )
