"""Make ``import channels…`` and ``import channels_redis…`` resolve to channelworks.

Call ``install()`` once, before anything imports ``channels`` (first lines of ``manage.py``,
``asgi.py`` or the settings module)::

    import channelworks.compat

    channelworks.compat.install()

Rules of this file:

- ``ALIASES`` below is the whole map: a Channels module name to the channelworks modules that
  provide its names. A name absent from ``ALIASES`` is not importable under ``channels`` at all,
  even if the real Channels is installed: the hook sits first on ``sys.meta_path`` and a mapped
  package's ``__path__`` is empty, so nothing is ever loaded from Channels' own files.
- Each alias is a fresh module object. channelworks' own modules are never registered under a
  ``channels`` name, because the import system sets every submodule as an attribute of its
  parent: registering ``channelworks`` as ``channels`` would plant ``channels.generic`` and
  friends on ``channelworks`` itself.
- An alias's public names are its targets' public names (``__all__``, else names without a
  leading underscore), looked up on every access (PEP 562 ``__getattr__``), so an object is the
  very channelworks object and a monkeypatched target is seen at once. Submodules of a target
  are not forwarded; only the aliased ones exist, imported on first attribute access.
- An alias whose target module does not exist yet fails to import with ``ModuleNotFoundError``
  naming both modules; an alias that lacks a name raises ``AttributeError`` naming the
  channelworks module(s) that do not define it.
- A name with aliased children (``channels``, ``channels.generic``…) is a package with
  ``__path__ = []``. An empty target tuple means the package has no names of its own.
- ``install()`` refuses to run once the real Channels is imported: two copies of the same
  classes in one process fail in ways far from their cause.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from collections.abc import Callable, Sequence

# Channels module name -> channelworks modules whose public names it exposes, searched in order.
ALIASES: dict[str, tuple[str, ...]] = {
    "channels": ("channelworks",),
    # "channels" in INSTALLED_APPS: Django finds our AppConfig here (checks, session hooks)
    "channels.apps": ("channelworks.compat_apps",),
    "channels.auth": ("channelworks.auth",),
    "channels.consumer": ("channelworks.consumers",),
    "channels.db": ("channelworks.db",),
    "channels.exceptions": ("channelworks.exceptions",),
    "channels.generic": (),
    "channels.generic.http": ("channelworks.consumers",),
    "channels.generic.websocket": ("channelworks.consumers",),
    "channels.layers": ("channelworks.layers",),
    # Django imports an installed app's commands by module name: "channels" in
    # INSTALLED_APPS finds channelworks' management/commands folder through the alias.
    "channels.management": (),
    "channels.management.commands": (),
    "channels.management.commands.runserver": ("channelworks.management.commands.runserver",),
    "channels.management.commands.runworker": ("channelworks.management.commands.runworker",),
    "channels.middleware": ("channelworks.middleware",),
    "channels.routing": ("channelworks.routing",),
    "channels.security": (),
    "channels.security.websocket": ("channelworks.security.websocket",),
    "channels.sessions": ("channelworks.sessions",),
    "channels.testing": ("channelworks.testing",),
    "channels.testing.live": ("channelworks.testing.live",),
    "channels.utils": ("channelworks.utils",),
    "channels.worker": ("channelworks.worker",),
    "channels_redis": ("channelworks.layers.redis",),
    # channels_redis.core re-exports ChannelFull and its helpers; so do the aliases
    "channels_redis.core": (
        "channelworks.layers.redis",
        "channelworks.exceptions",
        "channelworks.layers.redis.compat_utils",
    ),
    "channels_redis.pubsub": ("channelworks.layers.redis",),
    "channels_redis.serializers": ("channelworks.layers.redis.compat_serializers",),
    "channels_redis.utils": ("channelworks.layers.redis.compat_utils",),
    "channels_rabbitmq": ("channelworks.layers.rabbitmq",),
    # channels_rabbitmq.core imports ChannelFull and StopConsumer and defines ReconnectDelay
    "channels_rabbitmq.core": (
        "channelworks.layers.rabbitmq",
        "channelworks.layers.rabbitmq.compat_names",
        "channelworks.exceptions",
    ),
}

#: top-level names the hook owns; ``install()`` refuses to run if a module of one is loaded
ROOTS = frozenset(name.partition(".")[0] for name in ALIASES)


class AliasImporter(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds and builds the alias modules named in ``ALIASES``; one instance is installed."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in ALIASES:
            return None
        targets = ALIASES[fullname]
        for module_name in targets:
            require_module(fullname, module_name)
        origin = f"alias of {', '.join(targets)}" if targets else "alias package"
        # A package's __path__ is [], so its submodules can come from this hook only.
        return importlib.machinery.ModuleSpec(
            fullname, self, origin=origin, is_package=is_package(fullname)
        )

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return types.ModuleType(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        name = module.__name__
        targets = [importlib.import_module(t) for t in ALIASES[name]]
        module.__doc__ = f"Alias of {', '.join(ALIASES[name])} installed by channelworks.compat."
        if targets and isinstance(getattr(targets[0], "__file__", None), str):
            # Django finds an installed app ("channels") by its module's file, and
            # ``from channels.x import missing`` quotes it: both should point at channelworks.
            # Hazard: inspect.getmodule() of a frame in that file may then name the alias; the
            # targets are re-exporting __init__ files, whose code hardly ever runs in a frame.
            module.__file__ = targets[0].__file__
        exported = sorted({n for t in targets for n in public_names(t)})
        vars(module).update(
            __all__=exported,
            __getattr__=forwarder(name, targets),
            __dir__=lambda: sorted({*vars(module), *exported, *children(name)}),
        )


def require_module(alias: str, module_name: str) -> None:
    """Raise ``ModuleNotFoundError`` naming ``alias`` if ``module_name`` cannot be imported."""
    try:
        found = importlib.util.find_spec(module_name) is not None
    except ModuleNotFoundError:  # a parent package is missing
        found = False
    if not found:
        raise ModuleNotFoundError(
            f"No module named {alias!r}: channelworks.compat maps it to {module_name!r}, "
            f"which does not exist in this version of channelworks",
            name=alias,
        )


def is_package(alias: str) -> bool:
    return any(name.startswith(alias + ".") for name in ALIASES)


def children(alias: str) -> list[str]:
    """Last parts of the aliases directly under ``alias``."""
    prefix = alias + "."
    rests = (n[len(prefix) :] for n in ALIASES if n.startswith(prefix))
    return [rest for rest in rests if "." not in rest]


def public_names(module: types.ModuleType) -> list[str]:
    """``__all__`` of ``module``, else its names without a leading underscore (not modules)."""
    declared = getattr(module, "__all__", None)
    if declared is not None:
        return list(declared)
    return [
        n
        for n, value in vars(module).items()
        if not n.startswith("_") and not isinstance(value, types.ModuleType)
    ]


def forwarder(alias: str, targets: Sequence[types.ModuleType]) -> Callable[[str], object]:
    """The PEP 562 ``__getattr__`` of ``alias``: aliased submodules, then the targets' names."""

    def __getattr__(attr: str) -> object:
        if f"{alias}.{attr}" in ALIASES:
            try:
                return importlib.import_module(f"{alias}.{attr}")
            except ModuleNotFoundError as exc:
                raise AttributeError(str(exc), name=attr) from exc
        for target in targets:
            if attr in public_names(target):
                value = getattr(target, attr)
                if not isinstance(value, types.ModuleType):  # only aliases stand for modules
                    return value
        where = ", ".join(t.__name__ for t in targets) or "(no channelworks module)"
        raise AttributeError(
            f"module {alias!r} has no attribute {attr!r}: it is an alias of {where}, "
            f"which does not provide {attr!r}",
            name=attr,
        )

    return __getattr__


_importer = AliasImporter()


def install() -> None:
    """Make ``channels`` and ``channels_redis`` imports resolve to channelworks.

    Safe to call more than once. Call it before anything imports the real Channels: if a
    ``channels`` module is already loaded this raises ``RuntimeError``, because objects from the
    two packages would then be mixed in one process.
    """
    loaded = sorted(
        name
        for name, module in list(sys.modules.items())  # a copy: other threads may import
        if name.partition(".")[0] in ROOTS and not is_alias(module)
    )
    if loaded:
        raise RuntimeError(
            f"channelworks.compat.install() must run before Channels is imported; "
            f"already imported: {', '.join(loaded)}"
        )
    if _importer in sys.meta_path:
        sys.meta_path.remove(_importer)
    sys.meta_path.insert(0, _importer)


def uninstall() -> None:
    """Undo ``install()``: remove the hook and every alias module from ``sys.modules``.

    Objects already imported through an alias stay usable; they are channelworks' own.
    """
    while _importer in sys.meta_path:
        sys.meta_path.remove(_importer)
    for name in [n for n, m in list(sys.modules.items()) if is_alias(m)]:
        del sys.modules[name]


def is_installed() -> bool:
    return _importer in sys.meta_path


def is_alias(module: object) -> bool:
    """True for a module object built by this hook."""
    spec = getattr(module, "__spec__", None)
    return isinstance(spec, importlib.machinery.ModuleSpec) and spec.loader is _importer


__all__ = [
    "ALIASES",
    "ROOTS",
    "AliasImporter",
    "install",
    "is_alias",
    "is_installed",
    "uninstall",
]
