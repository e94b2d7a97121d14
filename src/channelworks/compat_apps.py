"""``channels.apps`` under ``compat.install()``: the app config of ``"channels"`` in
``INSTALLED_APPS``.

A Channels project keeps ``"channels"`` in ``INSTALLED_APPS``; Django then looks for its
config in ``channels.apps`` and finds this one: the app keeps Channels' label (``channels``)
and its files are channelworks' (management commands, static files), and ``ready()`` does
what ``"channelworks"``'s does (system checks, sockets closed when their session ends).
"""

from __future__ import annotations

from channelworks.apps import ChannelworksConfig


class ChannelsConfig(ChannelworksConfig):
    name = "channels"
    label = "channels"
    verbose_name = "channelworks (as channels)"


__all__ = ["ChannelsConfig"]
