from django.apps import AppConfig


class ChatConfig(AppConfig):
    """Chat rooms whose messages are saved, so a reload shows the history."""

    name = "channelworks.demo.chat"
    label = "chat"

    def ready(self) -> None:
        from channelworks.demo.chat import signals  # noqa: F401  (connects the receivers)
