"""Django system checks for projects that install ``channelworks``.

- ``channelworks.W001`` (warning): ``ASGI_APPLICATION`` is not set; ``runserver`` and the
  live-server test case need it.
- ``channelworks.E001``: ``ASGI_APPLICATION`` cannot be imported.
- ``channelworks.E002``: ``CHANNEL_LAYERS`` is not a dict of alias to dict.
- ``channelworks.E003``: a layer's ``BACKEND`` is missing or cannot be imported.
- ``channelworks.E004``: a layer's ``CONFIG`` is not a dict, or has keys the backend does not
  take.
- ``channelworks.W002`` (warning): the in-memory layer with ``DEBUG = False``; it cannot carry
  messages between processes.
- ``channelworks.W003`` (warning): ``django.contrib.staticfiles`` is listed before
  ``channelworks`` in ``INSTALLED_APPS``, so its WSGI ``runserver`` wins over ours.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig, apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register
from django.core.exceptions import ImproperlyConfigured

from channelworks.exceptions import InvalidChannelLayerError
from channelworks.layers.memory import InMemoryChannelLayer
from channelworks.layers.registry import BACKEND_ALIASES, import_backend


@register("channelworks")
def check_asgi_application(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    if not getattr(settings, "ASGI_APPLICATION", None):
        return [
            Warning(
                "ASGI_APPLICATION is not set.",
                hint="Point it at your application, like 'mysite.asgi.application'.",
                id="channelworks.W001",
            )
        ]
    from channelworks.routing import get_default_application

    try:
        get_default_application()
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="channelworks.E001")]
    return []


@register("channelworks")
def check_runserver_order(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    names = [config.name for config in apps.get_app_configs()]
    staticfiles = "django.contrib.staticfiles"
    if (
        staticfiles in names
        and "channelworks" in names
        and names.index(staticfiles) < names.index("channelworks")
    ):
        return [
            Warning(
                "django.contrib.staticfiles comes before channelworks in INSTALLED_APPS, "
                "so 'runserver' is staticfiles' WSGI server, without WebSockets.",
                hint="List 'channelworks' before 'django.contrib.staticfiles'.",
                id="channelworks.W003",
            )
        ]
    return []


@register("channelworks")
def check_channel_layers(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    layers = getattr(settings, "CHANNEL_LAYERS", {})
    if layers is None:
        return []
    if not isinstance(layers, dict) or not all(isinstance(v, dict) for v in layers.values()):
        return [
            Error(
                "CHANNEL_LAYERS must be a dict of alias to a dict with BACKEND and CONFIG.",
                id="channelworks.E002",
            )
        ]
    messages: list[CheckMessage] = []
    for alias, entry in layers.items():
        messages.extend(_check_layer(str(alias), entry))
    return messages


def _check_layer(alias: str, entry: dict[str, Any]) -> list[CheckMessage]:
    backend = entry.get("BACKEND")
    if not isinstance(backend, str):
        return [Error(f"Channel layer {alias!r} has no BACKEND.", id="channelworks.E003")]
    try:
        layer_class = import_backend(BACKEND_ALIASES.get(backend, backend), alias)
    except InvalidChannelLayerError as exc:
        return [Error(str(exc), id="channelworks.E003")]
    config = entry.get("CONFIG") or {}
    if not isinstance(config, dict):
        return [Error(f"CONFIG of channel layer {alias!r} must be a dict.", id="channelworks.E004")]
    accepted = _accepted_options(layer_class)
    unknown = [] if accepted is None else sorted(set(config) - accepted)
    messages: list[CheckMessage] = []
    if unknown:
        messages.append(
            Error(
                f"CONFIG of channel layer {alias!r} has option(s) {backend} does not take: "
                f"{', '.join(unknown)}.",
                id="channelworks.E004",
            )
        )
    if issubclass(layer_class, InMemoryChannelLayer) and not settings.DEBUG:
        messages.append(
            Warning(
                f"Channel layer {alias!r} is in-memory: it cannot carry messages between "
                "processes, so a site with more than one server or worker process loses them.",
                hint="Use the Redis or RabbitMQ layer in production.",
                id="channelworks.W002",
            )
        )
    return messages


def _accepted_options(layer_class: type) -> set[str] | None:
    """The keyword options the backend takes; ``None`` if it takes any (``**kwargs``)."""
    parameters = inspect.signature(layer_class).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return {p.name for p in parameters if p.kind is not inspect.Parameter.VAR_POSITIONAL}
