from django.apps import AppConfig


class EchoConfig(AppConfig):
    """The smallest consumer: every frame comes back as it went."""

    name = "channelworks.demo.echo"
    label = "echo"
