from django.apps import AppConfig


class ThumbnailsConfig(AppConfig):
    """Avatars whose thumbnails a worker makes, reached by channel name."""

    name = "channelworks.demo.thumbnails"
    label = "thumbnails"
