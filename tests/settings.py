"""Django settings for the test suite (pytest-django loads them for every test).

The core (consumers, routing, layers) never needs them; the Django integration tests do.
SQLite is the default database; PostgreSQL is the ``postgres`` alias when this machine's
server answers on 127.0.0.1:5432 (tests that need it skip otherwise, or fail when
``CHANNELWORKS_REQUIRE_SERVICES=1``).
"""

from __future__ import annotations

import os
import socket
import tempfile


def _reachable(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


SECRET_KEY = "channelworks-test-suite-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "channelworks",
    "tests.djangoapp",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "tests.djangoapp.urls"
ASGI_APPLICATION = "tests.djangoapp.asgi.application"
DATABASES: dict[str, dict[str, object]] = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": ":memory:",
        # A file, not memory: worker threads and live servers then open their own
        # connections to the same test database, and close them like in production.
        "TEST": {
            "NAME": os.path.join(tempfile.gettempdir(), f"channelworks-test-{os.getpid()}.db")
        },
    },
}
POSTGRES_AVAILABLE = _reachable("127.0.0.1", 5432)
if POSTGRES_AVAILABLE:
    DATABASES["postgres"] = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "channelworks",
        "HOST": "127.0.0.1",
        "PORT": 5432,
        "USER": os.environ.get("CHANNELWORKS_PGUSER", "postgres"),
        "TEST": {"NAME": "channelworks_test"},
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast, tests only
CHANNEL_LAYERS = {"default": {"BACKEND": "channelworks.layers.InMemoryChannelLayer"}}
