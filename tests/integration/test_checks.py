"""System checks of the channelworks Django app."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from django.core.checks import run_checks
from django.test import override_settings

from channelworks.checks import (
    check_asgi_application,
    check_channel_layers,
    check_runserver_order,
)

MEMORY = "channelworks.layers.InMemoryChannelLayer"


def ids(messages: Sequence[object]) -> list[str]:
    return [str(getattr(m, "id", "")) for m in messages]


def test_the_test_project_passes() -> None:
    assert [m for m in run_checks(tags=["channelworks"]) if m.is_serious()] == []


@override_settings(ASGI_APPLICATION=None)
def test_missing_asgi_application_warns() -> None:
    assert ids(check_asgi_application()) == ["channelworks.W001"]


@override_settings(ASGI_APPLICATION="tests.djangoapp.asgi.nope")
def test_unimportable_asgi_application_is_an_error() -> None:
    (message,) = check_asgi_application()
    assert message.id == "channelworks.E001"
    assert "tests.djangoapp.asgi.nope" in message.msg


@pytest.mark.parametrize(
    ("layers", "expected"),
    [
        ({"default": {"BACKEND": MEMORY}}, []),
        ({}, []),
        ([("default", {})], ["channelworks.E002"]),
        ({"default": "redis"}, ["channelworks.E002"]),
        ({"default": {}}, ["channelworks.E003"]),
        ({"default": {"BACKEND": "no.such.Layer"}}, ["channelworks.E003"]),
        ({"default": {"BACKEND": MEMORY, "CONFIG": ["capacity"]}}, ["channelworks.E004"]),
        (
            {"default": {"BACKEND": MEMORY, "CONFIG": {"hosts": [], "capcity": 5}}},
            ["channelworks.E004"],
        ),
        ({"default": {"BACKEND": MEMORY, "CONFIG": {"capacity": 5, "expiry": 3}}}, []),
    ],
)
def test_channel_layer_configuration(layers: object, expected: list[str]) -> None:
    with override_settings(CHANNEL_LAYERS=layers, DEBUG=True):
        assert ids(check_channel_layers()) == expected


def test_unknown_options_are_named() -> None:
    layers = {"x": {"BACKEND": MEMORY, "CONFIG": {"hosts": [], "capcity": 5}}}
    with override_settings(CHANNEL_LAYERS=layers, DEBUG=True):
        (message,) = check_channel_layers()
    assert "'x'" in message.msg
    assert "capcity" in message.msg
    assert "hosts" in message.msg


def test_in_memory_layer_in_production_warns() -> None:
    with override_settings(CHANNEL_LAYERS={"default": {"BACKEND": MEMORY}}, DEBUG=False):
        assert ids(check_channel_layers()) == ["channelworks.W002"]


@pytest.mark.parametrize(
    ("installed", "expected"),
    [
        (["channelworks", "django.contrib.staticfiles"], []),
        (["django.contrib.staticfiles", "channelworks"], ["channelworks.W003"]),
        (["channelworks"], []),
    ],
)
def test_runserver_order(installed: list[str], expected: list[str]) -> None:
    base = ["django.contrib.contenttypes", "django.contrib.auth", "django.contrib.sessions"]
    with override_settings(INSTALLED_APPS=[*base, *installed]):
        assert ids(check_runserver_order()) == expected
