"""``/metrics``: an ASGI application and a Django view serving the Prometheus exposition.

Off by default. ``CHANNELWORKS_METRICS`` (a dict) turns it on and says who may read:

- ``"token"``: a secret; a scrape must send ``Authorization: Bearer <token>``;
- ``"staff"``: ``True`` lets a logged-in staff user read it too (the Django view only);
- ``"public"``: ``True`` lets anyone read it (only behind a network that keeps others out).

Refused scrapes get 401 (403 for a signed-in user who is not staff); with the setting
absent, 404, as if there were no such page. ``MetricsApp(token=..., public=...)`` takes the
same options without Django settings.
"""

from __future__ import annotations

import hmac
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from channelworks.metrics.exporter import exporter
from channelworks.metrics.multiprocess import collected_registry, directory
from channelworks.types import Receive, Scope, Send

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse


@dataclass(frozen=True)
class Access:
    """Who may read ``/metrics``; ``enabled=False``: nobody (404)."""

    enabled: bool = False
    token: str | None = None
    staff: bool = False
    public: bool = False

    @classmethod
    def from_setting(cls, value: Mapping[str, Any] | None) -> Access:
        if value is None:
            return cls()
        unknown = set(value) - {"token", "staff", "public"}
        if unknown:
            raise ValueError(f"CHANNELWORKS_METRICS: unknown key(s) {sorted(unknown)}")
        token = value.get("token")
        if token is not None and (not isinstance(token, str) or len(token) < 16):
            raise ValueError("CHANNELWORKS_METRICS['token'] must be a string of 16+ characters")
        return cls(True, token, bool(value.get("staff")), bool(value.get("public")))

    def token_ok(self, authorization: str | None) -> bool:
        if self.token is None or not authorization:
            return False
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return False
        # Compared as bytes: compare_digest refuses non-ASCII text (a TypeError, so a 500 for
        # any client sending such a header). Headers arrive decoded as latin-1, so encoding
        # them back gives the bytes sent; a UTF-8 token matches the same token sent as UTF-8.
        sent = given.strip().encode("latin-1", "replace")
        return hmac.compare_digest(sent, self.token.encode())


def setting_access() -> Access:
    """``CHANNELWORKS_METRICS`` from Django settings, if they are configured."""
    if "django" not in sys.modules:
        return Access()
    from django.conf import settings

    if not settings.configured:
        return Access()
    return Access.from_setting(getattr(settings, "CHANNELWORKS_METRICS", None))


def render() -> bytes:
    """The exposition of this process (or of every process, in multi-process mode)."""
    exporter().sync()
    path = directory()
    registry = collected_registry(path) if path else exporter().registry
    return generate_latest(registry)


class MetricsApp:
    """An ASGI application answering ``GET`` with the exposition; mount it at ``/metrics``
    (``ProtocolTypeRouter({"http": ...})`` or in front of Django's ASGI app)."""

    def __init__(
        self, *, token: str | None = None, public: bool = False, access: Access | None = None
    ) -> None:
        if access is None and (token is not None or public):
            access = Access.from_setting({"token": token, "public": public})
        self._access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise ValueError(f"MetricsApp serves HTTP only, not {scope['type']!r}")
        access = self._access if self._access is not None else setting_access()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if not access.enabled:
            status, body, kind = 404, b"Not Found\n", "text/plain"
        elif scope["method"] not in ("GET", "HEAD"):
            status, body, kind = 405, b"Method Not Allowed\n", "text/plain"
        elif access.public or access.token_ok(headers.get("authorization")):
            status, body, kind = 200, render(), CONTENT_TYPE_LATEST
        else:
            status, body, kind = 401, b"Unauthorized\n", "text/plain"
        response_headers = [(b"content-type", kind.encode()), (b"cache-control", b"no-store")]
        if status == 401:
            response_headers.append((b"www-authenticate", b'Bearer realm="metrics"'))
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )


def metrics_view(request: HttpRequest) -> HttpResponse:
    """The Django view: ``path("metrics", metrics_view)``; access as ``CHANNELWORKS_METRICS``
    says (a staff session counts when ``"staff"`` is on)."""
    from django.http import HttpResponse, HttpResponseNotFound

    access = setting_access()
    if not access.enabled:  # as if there were no such page
        return HttpResponseNotFound("Not Found\n", content_type="text/plain")
    allowed = access.public or access.token_ok(request.headers.get("Authorization"))
    user = getattr(request, "user", None)
    if not allowed and access.staff and user is not None:
        allowed = bool(user.is_active and user.is_staff)
    if not allowed:
        signed_in = user is not None and user.is_authenticated
        response = HttpResponse("Forbidden\n" if signed_in else "Unauthorized\n", "text/plain")
        response.status_code = 403 if signed_in else 401
        if not signed_in:
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    response = HttpResponse(render(), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response


__all__ = ["Access", "MetricsApp", "metrics_view", "render", "setting_access"]
