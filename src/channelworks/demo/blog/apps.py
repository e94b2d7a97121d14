from django.apps import AppConfig


class BlogConfig(AppConfig):
    """A live blog: entries pushed to open pages from model signals."""

    name = "channelworks.demo.blog"
    label = "blog"

    def ready(self) -> None:
        from channelworks.demo.blog import signals  # noqa: F401  (connects the receivers)
