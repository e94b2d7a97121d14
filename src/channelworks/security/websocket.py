"""Origin checks for WebSocket handshakes: ``OriginValidator``, ``AllowedHostsOriginValidator``.

A browser sends the page's origin with every WebSocket handshake and attaches the site's
cookies whatever page opens the socket. Checking ``Origin`` is what stops another site from
opening an authenticated socket in its visitors' names (cross-site WebSocket hijacking).

Rules of this file:

- only ``websocket`` scopes are checked; every other scope type passes through untouched;
- a refused handshake is closed before it is accepted (``websocket.close`` in answer to
  ``websocket.connect``, code 1008), which servers answer with HTTP 403; the application is
  never called for it. Each refusal is logged at WARNING on ``channelworks.security``;
- an ``Origin`` that is missing, repeated, ``null`` or not a plain ``scheme://host[:port]`` is
  refused unless ``"*"`` is allowed;
- patterns are parsed once, when the validator is built, and a malformed one raises
  ``ValueError`` there, naming it. Matching is case-insensitive.

Patterns (``allowed_origins``):

====================================  ==================================================
``"*"``                               any origin, and a missing one
``"example.com"``                     that host, any scheme and port
``".example.com"``                    that host and its subdomains (as ``ALLOWED_HOSTS``)
``"*.example.com"``                   its subdomains only, at any depth
``"example.com:8000"``                that host on port 8000, any scheme
``"https://example.com"``             exactly that origin (port 443, the scheme's default)
``"http://example.com:8000"``         exactly that origin
``"https://.example.com"``            https, default port, the host and its subdomains
``"https://*"``                       any host over https on the default port
====================================  ==================================================
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.utils.http import is_same_domain

from channelworks.consumers import AsyncWebsocketConsumer
from channelworks.types import AnyASGIApp, Receive, Scope, Send

logger = logging.getLogger("channelworks.security")

#: the close code of a refused handshake (RFC 6455 "policy violation"); the client sees 403
REFUSED_CLOSE_CODE = 1008

DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}

#: what ``AllowedHostsOriginValidator`` allows under ``DEBUG`` with empty ``ALLOWED_HOSTS``,
#: the hosts Django itself accepts then
DEBUG_HOSTS = (".localhost", "127.0.0.1", "[::1]")

_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*\Z")
_HOST = re.compile(r"[a-z0-9._*:-]+\Z")  # ':' for IPv6 literals, whose brackets urlsplit drops


@dataclass(frozen=True, slots=True)
class Origin:
    """A parsed ``Origin`` header: lower-case scheme and host, port (default filled in, or
    ``None`` for a scheme without a default)."""

    scheme: str
    host: str
    port: int | None

    @classmethod
    def parse(cls, value: str) -> Origin | None:
        """The origin serialised in ``value``, or ``None`` if it is not ``scheme://host[:port]``
        (``null``, a path, user info, a bad port...)."""
        try:
            parts = urlsplit(value.strip())
            port = parts.port
        except ValueError:  # a bad port or IPv6 literal
            return None
        if (
            not parts.scheme
            or not parts.hostname
            or parts.username is not None
            or parts.password is not None
            or parts.path
            or parts.query
            or parts.fragment
        ):
            return None
        if port is None:
            port = DEFAULT_PORTS.get(parts.scheme)
        return cls(parts.scheme, parts.hostname, port)


@dataclass(frozen=True, slots=True)
class OriginPattern:
    """One entry of ``allowed_origins``, parsed; see the table in the module docstring.

    ``scheme`` and ``port`` are ``None`` when any will do; ``any_origin`` is set by ``"*"``.
    """

    scheme: str | None
    host: str
    port: int | None
    any_origin: bool = False

    @classmethod
    def parse(cls, pattern: str) -> OriginPattern:
        """Parse ``pattern``; raises ``ValueError`` naming it if it is malformed."""
        if not isinstance(pattern, str):
            raise TypeError(f"An allowed origin must be a str, not {pattern!r}")
        text = pattern.strip().lower()
        if text == "*":
            return cls(None, "*", None, any_origin=True)
        scheme, separator, netloc = text.partition("://")
        if not separator:
            scheme, netloc = "", text
        elif not _SCHEME.match(scheme):
            raise ValueError(f"Allowed origin {pattern!r} has a malformed scheme")
        try:
            parts = urlsplit("//" + netloc)
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"Allowed origin {pattern!r} is malformed: {exc}") from exc
        host = parts.hostname
        if (
            not host
            or not _HOST.match(host)
            or parts.username is not None
            or parts.password is not None
            or parts.path
            or parts.query
            or parts.fragment
        ):
            raise ValueError(
                f"Allowed origin {pattern!r} must be [scheme://]host[:port] (no path or user)"
            )
        if "*" in host and host != "*" and not (host.startswith("*.") and "*" not in host[2:]):
            raise ValueError(f"Allowed origin {pattern!r}: '*' may only start the host")
        if separator:
            return cls(scheme, host, port if port is not None else DEFAULT_PORTS.get(scheme))
        return cls(None, host, port)

    def matches(self, origin: Origin) -> bool:
        if self.any_origin:
            return True
        if self.scheme is not None and (self.scheme != origin.scheme or self.port != origin.port):
            return False
        if self.scheme is None and self.port is not None and self.port != origin.port:
            return False
        host = self.host
        if host == "*":
            return True
        if host.startswith("*."):
            return origin.host.endswith(host[1:])  # ".example.com": never the bare domain
        return is_same_domain(origin.host, host)


def parse_patterns(allowed_origins: Iterable[str]) -> tuple[OriginPattern, ...]:
    if isinstance(allowed_origins, str):
        raise TypeError(
            f"allowed_origins must be a list of patterns, not the string {allowed_origins!r}"
        )
    return tuple(OriginPattern.parse(pattern) for pattern in allowed_origins)


def origin_headers(scope: Scope) -> list[str]:
    """Every ``Origin`` header value of ``scope``, decoded."""
    return [
        value.decode("latin-1")
        for name, value in scope.get("headers", ())
        if name.lower() == b"origin"
    ]


def origin_allowed(values: Sequence[str], patterns: Sequence[OriginPattern]) -> bool:
    """Whether a handshake with these ``Origin`` header values passes ``patterns``."""
    if any(pattern.any_origin for pattern in patterns):
        return True
    if len(values) != 1:  # missing, or repeated (ambiguous)
        return False
    origin = Origin.parse(values[0])
    return origin is not None and any(pattern.matches(origin) for pattern in patterns)


class OriginValidator:
    """Refuses WebSocket handshakes whose ``Origin`` matches none of ``allowed_origins``.

    Wrap the application that uses cookies (``OriginValidator(AuthMiddlewareStack(...),
    ["https://example.com"])``). Patterns are described in the module docstring.
    """

    def __init__(self, application: AnyASGIApp, allowed_origins: Iterable[str]) -> None:
        self.application = application
        self.allowed_origins = parse_patterns(allowed_origins)

    def patterns(self) -> Sequence[OriginPattern]:
        """The patterns in force for the next handshake."""
        return self.allowed_origins

    def allows(self, scope: Scope) -> bool:
        """Whether the ``websocket`` ``scope`` may connect."""
        return origin_allowed(origin_headers(scope), self.patterns())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket" or self.allows(scope):
            await self.application(scope, receive, send)
            return
        origins = ", ".join(repr(value[:200]) for value in origin_headers(scope)) or "none"
        logger.warning("Refused a WebSocket handshake to %r; origin %s", scope.get("path"), origins)
        message = await receive()
        if message["type"] == "websocket.connect":  # else the client is gone already
            await send({"type": "websocket.close", "code": REFUSED_CLOSE_CODE})


class AllowedHostsOriginValidator(OriginValidator):
    """``OriginValidator`` whose patterns are ``settings.ALLOWED_HOSTS``, read at each handshake
    (so changed settings apply at once).

    As Django: with ``DEBUG`` and an empty ``ALLOWED_HOSTS``, ``localhost`` (and its
    subdomains), ``127.0.0.1`` and ``[::1]`` are allowed, on any port; without ``DEBUG`` an
    empty ``ALLOWED_HOSTS`` refuses every handshake.
    """

    def __init__(self, application: AnyASGIApp) -> None:
        super().__init__(application, ())

    def patterns(self) -> Sequence[OriginPattern]:
        from django.conf import settings

        hosts = tuple(settings.ALLOWED_HOSTS)
        if settings.DEBUG and not hosts:
            hosts = DEBUG_HOSTS
        return _host_patterns(hosts)


class WebsocketDenier(AsyncWebsocketConsumer):
    """A consumer that refuses every handshake (HTTP 403 at the server), as in Channels."""

    async def connect(self) -> None:
        await self.close()


@functools.lru_cache(maxsize=8)
def _host_patterns(hosts: tuple[str, ...]) -> tuple[OriginPattern, ...]:
    try:
        return parse_patterns(hosts)
    except (TypeError, ValueError) as exc:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"ALLOWED_HOSTS cannot be used as origins: {exc}") from exc


__all__ = [
    "DEBUG_HOSTS",
    "REFUSED_CLOSE_CODE",
    "AllowedHostsOriginValidator",
    "Origin",
    "OriginPattern",
    "OriginValidator",
    "WebsocketDenier",
    "origin_allowed",
    "origin_headers",
    "parse_patterns",
]
