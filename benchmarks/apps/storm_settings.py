"""Django settings of figure 13 (the reconnect storm): database-backed sessions and users.

The database comes from ``CWBENCH_STORM_DB``: ``sqlite:PATH`` or ``postgres:NAME`` (on
127.0.0.1:5432 as ``CHANNELWORKS_PGUSER``, default ``postgres``). The figure sets it, then
``benchmarks.storm_setup`` migrates and creates the sessions, then the servers start.
"""

from __future__ import annotations

import os
from typing import Any

import django
from django.conf import settings

VARIABLE = "CWBENCH_STORM_DB"


def database(spec: str) -> dict[str, Any]:
    kind, _, name = spec.partition(":")
    if kind == "sqlite" and name:
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": name}
    if kind == "postgres" and name:
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "HOST": "127.0.0.1",
            "PORT": 5432,
            "USER": os.environ.get("CHANNELWORKS_PGUSER", "postgres"),
        }
    raise ValueError(f"{VARIABLE} must be sqlite:PATH or postgres:NAME, got {spec!r}")


def configure(channel_layers: dict[str, Any] | None = None) -> None:
    """Configure Django for the storm apps (once per process)."""
    if settings.configured:
        return
    settings.configure(
        DEBUG=False,
        SECRET_KEY="benchmark-only-not-a-secret",
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "django.contrib.sessions",
        ],
        DATABASES={"default": database(os.environ[VARIABLE])},
        SESSION_ENGINE="django.contrib.sessions.backends.db",
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        CHANNEL_LAYERS=channel_layers or {},
    )
    django.setup()
