"""What the limits are: ``Limits`` (every option and its default) and where they come from.

Rules of this file:
- the defaults are on and generous: a person's browser, or a normal program, never meets
  them; a flooding or stalled client does;
- the process-wide limits are, in order: those given to ``configure()``, else Django's
  ``CHANNELWORKS_LIMITS`` setting (a dict of overrides) when settings are configured, else
  the defaults. The core never needs Django settings;
- a consumer class narrows or widens them with its ``limits`` attribute: a dict of overrides
  (applied over the process-wide limits) or a whole ``Limits``; ``Limits.off()`` turns every
  limit off for that class;
- ``None`` for an option turns that limit off.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

#: what happens to a frame over the inbound limits: close the socket with 1008, or drop it
Policy = Literal["close", "drop"]
POLICIES = ("close", "drop")


@dataclass(frozen=True)
class Limits:
    """Every per-connection limit of a WebSocket consumer; ``None`` turns one off.

    See docs/limits.md for what a client sees when it meets each one.
    """

    #: inbound frames per second per connection (token bucket rate), and the burst allowed
    messages_per_second: float | None = 100.0
    message_burst: int = 200
    #: inbound bytes per second per connection (characters for text frames), and the burst;
    #: the burst must be at least the largest frame you accept, or such a frame never passes
    bytes_per_second: float | None = 1024 * 1024
    bytes_burst: int = 16 * 1024 * 1024
    #: inbound frames per second across one user's connections in this process (off by
    #: default), and the burst
    user_messages_per_second: float | None = None
    user_message_burst: int = 400
    #: over an inbound limit: "close" (1008) or "drop" the frame (JSON consumers send an error
    #: frame at the start of each run of dropped frames)
    policy: Policy = "close"
    #: a connection that met its inbound limits leaves its spent buckets to the next
    #: connections from the same client address (``scope["client"]``) until they refill:
    #: reconnecting does not buy a flooding client a fresh burst (docs/limits.md)
    flood_memory: bool = True
    #: seconds a send may wait for the server to take a frame (a client that does not read)
    #: before the socket is closed with 1013
    send_timeout: float | None = 10.0
    #: sends of one connection waiting at once (sent from several tasks) before 1013
    max_pending_sends: int | None = 64
    #: seconds the 1013 close frame itself may wait for the client before it is given up
    close_wait: float = 2.0
    #: open WebSocket connections of this process (of consumers with this limit)
    max_connections: int | None = 10_000
    #: open WebSocket connections of one authenticated user in this process
    max_connections_per_user: int | None = 100
    #: total bytes of the handshake's header names and values
    max_header_bytes: int | None = 16 * 1024
    #: subprotocols the client may offer
    max_subprotocols: int | None = 16
    #: bytes of the raw path plus query string
    max_path_length: int | None = 4096

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"Limits.policy must be one of {POLICIES}, not {self.policy!r}")
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name == "policy" or value is None:
                continue
            if field.name == "flood_memory":
                if not isinstance(value, bool):
                    raise ValueError(f"Limits.flood_memory must be a bool, not {value!r}")
                continue
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise ValueError(
                    f"Limits.{field.name} must be a positive number or None, not {value!r}"
                )

    @classmethod
    def off(cls) -> Limits:
        """Every limit off."""
        off: dict[str, Any] = dict.fromkeys(_OPTIONAL)
        return cls(**off, flood_memory=False)

    def replace(self, overrides: Mapping[str, Any]) -> Limits:
        """These limits with ``overrides`` applied; an unknown name is a ``TypeError``."""
        unknown = set(overrides) - _NAMES
        if unknown:
            raise TypeError(
                f"unknown limit {', '.join(sorted(map(repr, unknown)))}; the limits are "
                f"{', '.join(sorted(_NAMES))}"
            )
        return dataclasses.replace(self, **overrides)


_NAMES = frozenset(field.name for field in dataclasses.fields(Limits))
#: the options that may be None (off)
_OPTIONAL = frozenset(
    field.name for field in dataclasses.fields(Limits) if "None" in str(field.type)
)

_configured: Limits | None = None
#: (the spec, the base it was applied to, the result), by the spec's and base's identity
_resolved: dict[tuple[int, int], tuple[object, object, Limits]] = {}


def configure(limits: Limits | Mapping[str, Any] | None) -> None:
    """Use ``limits`` (a ``Limits``, or overrides of the defaults) as the process-wide limits
    instead of Django settings; ``None`` goes back to the settings."""
    global _configured
    _configured = Limits().replace(limits) if isinstance(limits, Mapping) else limits
    _resolved.clear()


def process_limits() -> Limits:
    """The process-wide limits (see the rules of this file)."""
    if _configured is not None:
        return _configured
    overrides = _setting()
    return _DEFAULT if overrides is None else resolve(overrides, _DEFAULT)


def resolve(spec: object, base: Limits | None = None) -> Limits:
    """The limits a consumer class's ``limits`` attribute stands for, over ``base`` (by default
    the process-wide limits). Results are cached: call once per connection at most."""
    if base is None:
        base = process_limits()
    if spec is None:
        return base
    if isinstance(spec, Limits):
        return spec
    key = (id(spec), id(base))
    found = _resolved.get(key)
    if found is not None and found[0] is spec and found[1] is base:
        return found[2]
    if not isinstance(spec, Mapping):
        raise TypeError(f"limits must be a Limits, a dict of overrides or None, not {spec!r}")
    limits = base.replace(spec)
    if len(_resolved) > 1000:  # specs made per call would otherwise pile up
        _resolved.clear()
    _resolved[key] = (spec, base, limits)
    return limits


def _setting() -> Mapping[str, Any] | None:
    """Django's ``CHANNELWORKS_LIMITS`` if settings are configured (Django is imported only
    if it is installed)."""
    try:
        from django.conf import settings
    except ImportError:  # pragma: no cover - Django is a dependency, but the core needs none
        return None
    if not settings.configured:
        return None
    value: Mapping[str, Any] | None = getattr(settings, "CHANNELWORKS_LIMITS", None)
    if value is not None and not isinstance(value, Mapping):
        raise TypeError(f"CHANNELWORKS_LIMITS must be a dict, not {value!r}")
    return value


_DEFAULT = Limits()

__all__ = ["Limits", "Policy", "configure", "process_limits", "resolve"]
