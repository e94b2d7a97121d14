from django.conf import settings
from django.db import models


class Avatar(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="avatar"
    )
    image = models.ImageField(upload_to="avatars/")
    #: made by the worker (``consumers.ThumbnailConsumer``); empty until it is done
    thumbnail = models.ImageField(upload_to="thumbnails/", blank=True)
    updated = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"avatar of {self.user}"
