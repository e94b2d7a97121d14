"""The Django app: add ``"channelworks"`` to ``INSTALLED_APPS`` for the integration."""

from __future__ import annotations

from django.apps import AppConfig


class ChannelworksConfig(AppConfig):
    name = "channelworks"
    verbose_name = "channelworks"

    def ready(self) -> None:
        from channelworks import (
            checks,  # noqa: F401  (registers the system checks)
            session_sockets,
        )

        session_sockets.install()  # sockets close when their session ends, in every process
        session_sockets.watch_passwords()
