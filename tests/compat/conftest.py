"""Fixtures of the compat tests: the ``channels`` alias, a layer, and the seed modules.

The alias is installed for this package only and removed after it, so the rest of the suite
sees the import system as it was. Seed modules import ``channels…`` at their top, so they are
imported by fixtures, after the alias is installed, never at collection time.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import AsyncIterator, Iterator
from types import ModuleType

import pytest

from channelworks import compat
from channelworks.layers import BaseChannelLayer, channel_layers, get_channel_layer


@pytest.fixture(scope="package", autouse=True)
def channels_alias() -> Iterator[None]:
    """``compat.install()`` for the package; what was there before is put back after it."""
    was_installed = compat.is_installed()
    saved = {n: m for n, m in sys.modules.items() if n.partition(".")[0] in compat.ROOTS}
    compat.uninstall()
    for name in saved:
        sys.modules.pop(name, None)
    compat.install()
    yield
    compat.uninstall()
    sys.modules.update(saved)
    if was_installed:
        compat.install()


@pytest.fixture
async def layer() -> AsyncIterator[BaseChannelLayer]:
    """The default layer, configured the way a Channels project's settings name it."""
    channel_layers.configure({"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}})
    layer = get_channel_layer()
    assert layer is not None
    yield layer
    await layer.close()


def _seed(name: str) -> ModuleType:
    return importlib.import_module(f"tests.compat.seeds.{name}")


@pytest.fixture
def seed002() -> ModuleType:
    return _seed("seed_002_layers")


@pytest.fixture
def seed003() -> ModuleType:
    return _seed("seed_003_intro")


@pytest.fixture
def seed004_consumers() -> ModuleType:
    return _seed("seed_004_consumers")


@pytest.fixture
def seed004_routing() -> ModuleType:
    return _seed("seed_004_routing")


@pytest.fixture
def seed004_asgi() -> ModuleType:
    return _seed("seed_004_asgi")
