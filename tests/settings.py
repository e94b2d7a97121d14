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
    "django.contrib.admin",
    "django.contrib.messages",
    "channelworks",
    "tests.djangoapp",
    # the demo site's apps (tests/demo/); their tables are in the test database
    "channelworks.demo",
    "channelworks.demo.chat",
    "channelworks.demo.social",
    "channelworks.demo.blog",
    "channelworks.demo.echo",
    "channelworks.demo.thumbnails",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]
STATIC_URL = "/static/"
MEDIA_URL = "/media/"
MEDIA_ROOT = os.path.join(tempfile.gettempdir(), f"channelworks-test-media-{os.getpid()}")
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
        # One per test run (child processes inherit the run's): two runs on one machine
        # (a developer's and CI's) must not drop each other's test database.
        "TEST": {
            "NAME": "channelworks_test_"
            + os.environ.setdefault("CHANNELWORKS_TEST_RUN", str(os.getpid()))
        },
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast, tests only
CHANNEL_LAYERS = {"default": {"BACKEND": "channelworks.layers.InMemoryChannelLayer"}}
