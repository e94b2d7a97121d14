"""The ``CHANNEL_LAYERS`` registry: builds each configured layer once and hands it out.

Configuration comes from ``configure()`` if it was called, else from Django's
``settings.CHANNEL_LAYERS`` if Django settings are configured, else it is empty (every alias
then has no layer and consumers get ``channel_layer = None``). Django is imported only here,
and only when settings are needed.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from typing import Any

from channelworks import DEFAULT_CHANNEL_LAYER
from channelworks.exceptions import InvalidChannelLayerError
from channelworks.layers.base import BaseChannelLayer

LayerConfig = Mapping[str, Mapping[str, Any]]

# Accepted as aliases of our backends so Channels settings run unchanged.
BACKEND_ALIASES = {
    "channels.layers.InMemoryChannelLayer": "channelworks.layers.InMemoryChannelLayer",
    "channels_redis.core.RedisChannelLayer": "channelworks.layers.redis.RedisChannelLayer",
    "channels_redis.pubsub.RedisPubSubChannelLayer": "channelworks.layers.redis.RedisChannelLayer",
    "channels_rabbitmq.core.RabbitmqChannelLayer": (
        "channelworks.layers.rabbitmq.RabbitMQChannelLayer"
    ),
}


class ChannelLayerManager:
    """Holds one layer instance per alias, built on first use.

    When Django changes ``CHANNEL_LAYERS`` (``override_settings`` in a test), the layers built
    from the old value are forgotten, so the next ``get_channel_layer()`` builds a fresh one,
    as Channels' manager does. The signal is connected once Django is imported (never by
    this module: the core runs without Django).
    """

    def __init__(self) -> None:
        self._config: LayerConfig | None = None
        self.backends: dict[str, BaseChannelLayer] = {}
        self._listening = False
        if "django" in sys.modules:
            self._listen_to_django()

    def _listen_to_django(self) -> None:
        if self._listening:
            return
        from django.core.signals import setting_changed

        setting_changed.connect(self._setting_changed, weak=False)
        self._listening = True

    def _setting_changed(self, setting: str, **kwargs: Any) -> None:
        if setting == "CHANNEL_LAYERS" and self._config is None:
            self.backends = {}  # forgotten, not closed: Channels' behaviour

    def configure(self, config: LayerConfig | None) -> None:
        """Use ``config`` (shaped like ``CHANNEL_LAYERS``) instead of Django settings.

        ``None`` goes back to reading Django settings. Layers built before are forgotten, not
        closed: close them first if they hold connections.
        """
        self._config = config
        self.backends = {}

    @property
    def configs(self) -> LayerConfig:
        if self._config is not None:
            return self._config
        from django.conf import settings

        self._listen_to_django()
        if not settings.configured:
            return {}
        value = getattr(settings, "CHANNEL_LAYERS", {})
        return value if value is not None else {}

    def make_backend(self, alias: str) -> BaseChannelLayer:
        """Build a new layer for ``alias`` from its ``CONFIG`` (not cached)."""
        return self._make(alias, "CONFIG")

    def make_test_backend(self, alias: str) -> BaseChannelLayer:
        """Build a new layer for ``alias`` from its ``TEST_CONFIG`` (not cached);
        ``InvalidChannelLayerError`` if it has none."""
        return self._make(alias, "TEST_CONFIG")

    def _make(self, alias: str, key: str) -> BaseChannelLayer:
        try:
            entry = self.configs[alias]
        except KeyError:
            raise InvalidChannelLayerError(f"No channel layer named {alias!r}") from None
        if "ROUTING" in entry:
            raise InvalidChannelLayerError(
                f"Channel layer {alias!r} has a ROUTING key: routing is the ASGI "
                "application's job since Channels 2; remove it"
            )
        backend = entry.get("BACKEND")
        if not isinstance(backend, str):
            raise InvalidChannelLayerError(f"Channel layer {alias!r} has no BACKEND string")
        if key == "TEST_CONFIG" and key not in entry:
            raise InvalidChannelLayerError(f"Channel layer {alias!r} has no TEST_CONFIG")
        config = entry.get(key) or {}
        if not isinstance(config, Mapping):
            raise InvalidChannelLayerError(f"{key} of channel layer {alias!r} must be a dict")
        layer_class = import_backend(BACKEND_ALIASES.get(backend, backend), alias)
        try:
            return layer_class(**config)
        except (TypeError, ValueError) as exc:
            raise InvalidChannelLayerError(
                f"Bad CONFIG for channel layer {alias!r} ({backend}): {exc}"
            ) from exc

    def __getitem__(self, alias: str) -> BaseChannelLayer:
        layer = self.backends.get(alias)
        if layer is None:
            layer = self.backends[alias] = self.make_backend(alias)
        return layer

    def __contains__(self, alias: object) -> bool:
        return alias in self.configs

    def set(self, alias: str, layer: BaseChannelLayer) -> BaseChannelLayer | None:
        """Install ``layer`` under ``alias``; return the one it replaces (tests use this)."""
        old = self.backends.get(alias)
        self.backends[alias] = layer
        return old


def import_backend(path: str, alias: str) -> type[BaseChannelLayer]:
    module_name, _, class_name = path.rpartition(".")
    try:
        value = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise InvalidChannelLayerError(
            f"Cannot import BACKEND {path!r} of channel layer {alias!r}: {exc}"
        ) from exc
    if not isinstance(value, type):
        raise InvalidChannelLayerError(f"BACKEND {path!r} of layer {alias!r} is not a class")
    return value


channel_layers = ChannelLayerManager()


def get_channel_layer(alias: str = DEFAULT_CHANNEL_LAYER) -> BaseChannelLayer | None:
    """The layer configured under ``alias``, or ``None`` if there is none."""
    if alias in channel_layers.backends:
        return channel_layers.backends[alias]
    if alias not in channel_layers:
        return None
    return channel_layers[alias]


__all__ = ["ChannelLayerManager", "LayerConfig", "channel_layers", "get_channel_layer"]
