"""Unit tests of ``channelworks.compat``: the hook, the alias modules and their errors."""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

import channelworks
import channelworks.consumers
import channelworks.exceptions
import channelworks.layers
import channelworks.routing
import channelworks.testing
import channelworks.utils
from channelworks import compat
from channelworks.layers import InMemoryChannelLayer, channel_layers, get_channel_layer
from channelworks.layers.registry import import_backend

CHANNELWORKS_DIR = Path(channelworks.__file__).parent


def aliased(name: str) -> types.ModuleType:
    """``import name`` through the hook (a string, so mypy never sees Channels itself)."""
    return importlib.import_module(name)


def target_exists(module_name: str) -> bool:
    try:
        return importlib.util.find_spec(module_name) is not None
    except ModuleNotFoundError:
        return False


@pytest.fixture
def reinstall() -> Iterator[None]:
    """For tests that uninstall or reinstall: the package's alias is back after the test."""
    yield
    compat.uninstall()
    compat.install()


# -- install / uninstall -----------------------------------------------------------------------


def test_install_puts_one_hook_first_and_is_idempotent(reinstall: None) -> None:
    compat.install()
    compat.install()
    assert sys.meta_path[0] is compat._importer
    assert sys.meta_path.count(compat._importer) == 1


def test_install_moves_the_hook_back_to_the_front(reinstall: None) -> None:
    other = importlib.machinery.PathFinder
    sys.meta_path.insert(0, other)
    try:
        compat.install()
        assert sys.meta_path[0] is compat._importer
    finally:
        sys.meta_path.remove(other)


def test_uninstall_removes_the_hook_and_the_aliases(reinstall: None) -> None:
    aliased("channels.generic.websocket")
    aliased("channels.layers")
    compat.uninstall()
    assert compat._importer not in sys.meta_path
    assert not compat.is_installed()
    assert not [n for n in sys.modules if n.partition(".")[0] in compat.ROOTS]
    compat.uninstall()  # a second call is harmless


def test_objects_imported_before_uninstall_stay_channelworks_objects(reinstall: None) -> None:
    consumer_class = aliased("channels.generic.websocket").WebsocketConsumer
    compat.uninstall()
    assert consumer_class is channelworks.consumers.WebsocketConsumer


def test_install_refuses_when_channels_is_already_imported(reinstall: None) -> None:
    compat.uninstall()
    sys.modules["channels"] = types.ModuleType("channels")
    try:
        with pytest.raises(RuntimeError, match=r"before Channels is imported.*channels"):
            compat.install()
    finally:
        del sys.modules["channels"]


def test_the_hook_wins_over_an_installed_channels() -> None:
    if importlib.machinery.PathFinder.find_spec("channels") is None:
        pytest.skip("Channels itself is not installed here")
    channels = aliased("channels")
    assert compat.is_alias(channels)
    assert channels.__spec__ is not None
    assert channels.__spec__.origin == "alias of channelworks"
    assert channels.__version__ == channelworks.__version__


# -- what the aliases expose -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alias", "name", "expected"),
    [
        ("channels", "__version__", channelworks.__version__),
        ("channels", "DEFAULT_CHANNEL_LAYER", channelworks.DEFAULT_CHANNEL_LAYER),
        ("channels.consumer", "AsyncConsumer", channelworks.consumers.AsyncConsumer),
        ("channels.consumer", "SyncConsumer", channelworks.consumers.SyncConsumer),
        (
            "channels.generic.websocket",
            "WebsocketConsumer",
            channelworks.consumers.WebsocketConsumer,
        ),
        (
            "channels.generic.websocket",
            "AsyncWebsocketConsumer",
            channelworks.consumers.AsyncWebsocketConsumer,
        ),
        (
            "channels.generic.websocket",
            "JsonWebsocketConsumer",
            channelworks.consumers.JsonWebsocketConsumer,
        ),
        (
            "channels.generic.websocket",
            "AsyncJsonWebsocketConsumer",
            channelworks.consumers.AsyncJsonWebsocketConsumer,
        ),
        ("channels.generic.http", "AsyncHttpConsumer", channelworks.consumers.AsyncHttpConsumer),
        ("channels.routing", "ProtocolTypeRouter", channelworks.routing.ProtocolTypeRouter),
        ("channels.routing", "URLRouter", channelworks.routing.URLRouter),
        ("channels.routing", "ChannelNameRouter", channelworks.routing.ChannelNameRouter),
        (
            "channels.routing",
            "get_default_application",
            channelworks.routing.get_default_application,
        ),
        ("channels.layers", "get_channel_layer", channelworks.layers.get_channel_layer),
        ("channels.layers", "channel_layers", channelworks.layers.channel_layers),
        ("channels.layers", "BaseChannelLayer", channelworks.layers.BaseChannelLayer),
        ("channels.layers", "InMemoryChannelLayer", channelworks.layers.InMemoryChannelLayer),
        ("channels.layers", "ChannelLayerManager", channelworks.layers.ChannelLayerManager),
        ("channels.exceptions", "StopConsumer", channelworks.exceptions.StopConsumer),
        ("channels.exceptions", "DenyConnection", channelworks.exceptions.DenyConnection),
        ("channels.exceptions", "AcceptConnection", channelworks.exceptions.AcceptConnection),
        ("channels.exceptions", "ChannelFull", channelworks.exceptions.ChannelFull),
        ("channels.exceptions", "RequestAborted", channelworks.exceptions.RequestAborted),
        ("channels.exceptions", "RequestTimeout", channelworks.exceptions.RequestTimeout),
        (
            "channels.exceptions",
            "InvalidChannelLayerError",
            channelworks.exceptions.InvalidChannelLayerError,
        ),
        ("channels.exceptions", "MessageTooLarge", channelworks.exceptions.MessageTooLarge),
        (
            "channels.testing",
            "ApplicationCommunicator",
            channelworks.testing.ApplicationCommunicator,
        ),
        ("channels.testing", "WebsocketCommunicator", channelworks.testing.WebsocketCommunicator),
        ("channels.testing", "HttpCommunicator", channelworks.testing.HttpCommunicator),
        ("channels.consumer", "get_handler_name", channelworks.consumers.get_handler_name),
        ("channels.utils", "await_many_dispatch", channelworks.utils.await_many_dispatch),
        ("channels.utils", "name_that_thing", channelworks.utils.name_that_thing),
    ],
)
def test_alias_names_are_the_channelworks_objects(alias: str, name: str, expected: object) -> None:
    assert getattr(aliased(alias), name) is expected
    namespace: dict[str, object] = {}
    exec(f"from {alias} import {name}", namespace)
    assert namespace[name] is expected


def test_submodule_is_reachable_as_an_attribute_without_importing_it(reinstall: None) -> None:
    compat.uninstall()
    compat.install()
    channels = aliased("channels")
    assert "channels.layers" not in sys.modules
    assert channels.layers.get_channel_layer is channelworks.layers.get_channel_layer
    assert sys.modules["channels.layers"] is channels.layers
    assert channels.generic.websocket.WebsocketConsumer is channelworks.consumers.WebsocketConsumer


def test_names_are_looked_up_on_each_access(monkeypatch: pytest.MonkeyPatch) -> None:
    def patched() -> None:
        return None

    monkeypatch.setattr(channelworks.layers, "get_channel_layer", patched)
    assert aliased("channels.layers").get_channel_layer is patched


def test_star_import_gives_the_public_names() -> None:
    namespace: dict[str, object] = {}
    exec("from channels.layers import *", namespace)
    assert namespace["get_channel_layer"] is channelworks.layers.get_channel_layer
    assert namespace["InMemoryChannelLayer"] is InMemoryChannelLayer
    assert aliased("channels.layers").__all__ == sorted(channelworks.layers.__all__)


def test_dir_lists_names_and_aliased_submodules() -> None:
    listing = dir(aliased("channels"))
    assert {"__version__", "DEFAULT_CHANNEL_LAYER", "layers", "generic", "testing"} <= set(listing)


def test_packages_have_an_empty_path_and_modules_none() -> None:
    for name in ("channels", "channels.generic", "channels.security"):
        assert aliased(name).__path__ == []
    assert not hasattr(aliased("channels.layers"), "__path__")


def test_alias_file_points_at_the_target_for_django() -> None:
    assert aliased("channels").__file__ == channelworks.__file__
    assert not hasattr(aliased("channels.generic"), "__file__")


def test_django_can_install_channels_as_an_app() -> None:
    from django.apps import AppConfig

    config = AppConfig.create("channels")
    assert config.label == "channels"
    assert Path(config.path) == CHANNELWORKS_DIR


# -- isolation from channelworks' own modules -------------------------------------------------


def test_channelworks_modules_are_not_polluted_by_alias_submodules() -> None:
    for name in ("channels.generic.websocket", "channels.generic.http", "channels.consumer"):
        aliased(name)
    aliased("channels.security")
    for attr in ("generic", "consumer", "security"):
        # channelworks.security is a real subpackage, an attribute once imported; an alias
        # module must never be planted there
        assert not compat.is_alias(getattr(channelworks, attr, None)), attr
    assert not hasattr(channelworks.consumers, "generic")
    for name, module in list(sys.modules.items()):
        if name.partition(".")[0] in compat.ROOTS:
            assert compat.is_alias(module), name
            assert module is not sys.modules.get("channelworks" + name[len("channels") :])


def test_submodules_of_a_target_are_not_forwarded() -> None:
    channels = aliased("channels")
    assert channelworks.consumers  # imported, so an attribute of the channelworks package
    with pytest.raises(AttributeError):
        _ = channels.consumers
    with pytest.raises(ModuleNotFoundError):
        aliased("channels.consumers")


# -- errors ------------------------------------------------------------------------------------


def test_missing_name_says_which_channelworks_module_lacks_it() -> None:
    consumer = aliased("channels.consumer")
    with pytest.raises(AttributeError, match=r"channels\.consumer.*channelworks\.consumers"):
        _ = consumer.no_such_name
    with pytest.raises(ImportError, match=r"channels\.layers.*channelworks.layers"):
        exec("from channels.layers import no_such_name", {})


def test_alias_of_a_missing_module_fails_naming_both(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(compat.ALIASES, "channels.later", ("channelworks.later",))
    monkeypatch.setitem(compat.ALIASES, "channels.deeper", ("channelworks.not_yet.deeper",))
    with pytest.raises(ModuleNotFoundError, match=r"'channels\.later'.*'channelworks\.later'"):
        aliased("channels.later")
    with pytest.raises(ModuleNotFoundError, match=r"'channels\.deeper'.*not_yet\.deeper"):
        aliased("channels.deeper")
    with pytest.raises(AttributeError, match=r"'channels\.later'.*'channelworks\.later'"):
        _ = aliased("channels").later
    assert "channels.later" not in sys.modules


@pytest.mark.parametrize("alias", sorted(compat.ALIASES))
def test_every_alias_imports_or_names_its_missing_target(alias: str) -> None:
    parts = alias.split(".")
    chain = [".".join(parts[: i + 1]) for i in range(len(parts))]  # the alias and its parents
    missing = [t for name in chain for t in compat.ALIASES[name] if not target_exists(t)]
    if not missing:
        assert compat.is_alias(aliased(alias))
        return
    with pytest.raises(ModuleNotFoundError) as info:
        aliased(alias)
    assert missing[0] in str(info.value)
    assert "channels" in str(info.value)


def test_unmapped_channels_names_do_not_import() -> None:
    with pytest.raises(ModuleNotFoundError, match=r"channels\.nothing"):
        aliased("channels.nothing")
    with pytest.raises(ModuleNotFoundError):
        aliased("channels.generic.nothing")


def test_channels_in_installed_apps_gets_our_app_config() -> None:
    """A Channels project lists "channels": Django finds the app's config in
    ``channels.apps``, which is ours (system checks, sockets closed with their session)."""
    from django.apps import AppConfig

    from channelworks.apps import ChannelworksConfig

    config = AppConfig.create("channels")
    assert isinstance(config, ChannelworksConfig)  # its ready() is ours
    assert config.label == "channels"
    assert Path(config.path) == CHANNELWORKS_DIR


# -- CHANNEL_LAYERS backends -------------------------------------------------------------------


def test_backend_string_of_channels_builds_our_memory_layer() -> None:
    channel_layers.configure({"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}})
    assert type(get_channel_layer()) is InMemoryChannelLayer
    # Also without the registry's own alias table, through the import hook:
    assert import_backend("channels.layers.InMemoryChannelLayer", "x") is InMemoryChannelLayer


async def test_channels_redis_backend_strings_build_our_redis_layer() -> None:
    from channelworks.layers.redis import RedisChannelLayer

    for path in (
        "channels_redis.core.RedisChannelLayer",
        "channels_redis.pubsub.RedisPubSubChannelLayer",
    ):
        channel_layers.configure({"default": {"BACKEND": path}})
        layer = get_channel_layer()
        assert isinstance(layer, RedisChannelLayer), path
        await layer.close()
