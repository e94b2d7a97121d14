"""The Django app: add ``"channelworks"`` to ``INSTALLED_APPS`` for the integration."""

from __future__ import annotations

from django.apps import AppConfig


class ChannelworksConfig(AppConfig):
    name = "channelworks"
    verbose_name = "channelworks"
