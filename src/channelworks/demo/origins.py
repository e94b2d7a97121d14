"""The origin check of the demo's sockets: ``AllowedHostsOriginValidator``, and one rule more.

``channelworks demo --host 0.0.0.0`` serves on every address of the machine, which it cannot
list, so ``ALLOWED_HOSTS`` is ``["*"]``. As origins, ``"*"`` allows any site at all: every
page on the web (or another server on this machine) could open a socket with our users'
cookies. So where ``ALLOWED_HOSTS`` is ``"*"``, a socket's ``Origin`` must be the very host
and port the browser connected to (its ``Host`` header), as Django's CSRF check does for forms.
"""

from __future__ import annotations

from django.conf import settings

from channelworks.security.websocket import AllowedHostsOriginValidator, Origin, origin_headers
from channelworks.types import Scope


class SiteOriginValidator(AllowedHostsOriginValidator):
    def allows(self, scope: Scope) -> bool:
        if "*" not in settings.ALLOWED_HOSTS:
            return super().allows(scope)
        origins = origin_headers(scope)
        hosts = [value for name, value in scope.get("headers", ()) if name.lower() == b"host"]
        if len(origins) != 1 or len(hosts) != 1:
            return False
        origin = Origin.parse(origins[0])
        if origin is None:
            return False
        return origin == Origin.parse(f"{origin.scheme}://{hosts[0].decode('latin-1')}")
