from django.apps import AppConfig


class SocialConfig(AppConfig):
    """Direct messages, posts with comments and likes, and live notifications of all three."""

    name = "channelworks.demo.social"
    label = "social"
