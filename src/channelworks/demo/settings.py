"""Settings of the demo site, read from the environment that ``channelworks demo`` sets.

Every server process imports this module on its own (uvicorn's ``--workers`` children import
the application by name), so nothing here may depend on the command's arguments directly:

- ``CHANNELWORKS_DEMO_DATA``: the data folder (SQLite database, uploaded media, secret key);
- ``CHANNELWORKS_DEMO_REDIS``: a Redis URL for the channel layer; unset: in-memory layer;
- ``CHANNELWORKS_DEMO_HOSTS``: comma-separated ``ALLOWED_HOSTS`` (also the origins the
  sockets accept).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

from django.core.management.utils import get_random_secret_key

PACKAGE_DIR = Path(__file__).resolve().parent
DATA_DIR = Path(os.environ.get("CHANNELWORKS_DEMO_DATA", ".channelworks-demo")).resolve()
REDIS_URL = os.environ.get("CHANNELWORKS_DEMO_REDIS", "")


def redis_prefix(data_dir: Path) -> str:
    """The Redis layer's key prefix of the demo whose data is in ``data_dir``: two demos with
    two data folders are two sites, and on one Redis they must not share groups (a room's
    messages and presence, the operations page's processes)."""
    return "channelworks-demo-" + hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]


def secret_key(data_dir: Path) -> str:
    """The key kept in ``data_dir``, made on first use, so sessions survive a restart."""
    path = data_dir / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        data_dir.mkdir(parents=True, exist_ok=True)
        key = get_random_secret_key()
        path.write_text(key)
        path.chmod(0o600)
        return key


SECRET_KEY = secret_key(DATA_DIR)
DEBUG = False
ALLOWED_HOSTS = os.environ.get("CHANNELWORKS_DEMO_HOSTS", "127.0.0.1,localhost,[::1]").split(",")

INSTALLED_APPS = [
    "channelworks",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channelworks.demo",
    "channelworks.demo.chat",
    "channelworks.demo.social",
    "channelworks.demo.blog",
    "channelworks.demo.echo",
    "channelworks.demo.thumbnails",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "channelworks.demo.social.middleware.NotificationCursorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "channelworks.demo.urls"
ASGI_APPLICATION = "channelworks.demo.asgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": DATA_DIR / "db.sqlite3",
        # Several server processes (--workers) and the worker's threads write to one file:
        # WAL lets readers go on during a write, IMMEDIATE takes the write lock up front
        # instead of failing half-way, and the timeout waits for it.
        "OPTIONS": {
            "init_command": "PRAGMA journal_mode=WAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        },
    },
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channelworks.layers.redis.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": redis_prefix(DATA_DIR)},
        },
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channelworks.layers.InMemoryChannelLayer"}}
    # One process serves everything, the thumbnail worker included (see lifespan.py), and
    # the command refuses --workers without Redis: the in-memory layer is enough.
    SILENCED_SYSTEM_CHECKS = ["channelworks.W002"]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "chat:rooms"
LOGOUT_REDIRECT_URL = "home"

STATIC_URL = "/static/"
MEDIA_URL = "/media/"
MEDIA_ROOT = DATA_DIR / "media"

# Uploaded media are served by Django's static ``serve`` view, whose FileResponse Django's ASGI
# handler reads in a thread, with this warning each time. Fine for a demo; a real site lets
# its web server or object storage serve media.
warnings.filterwarnings(
    "ignore", "StreamingHttpResponse must consume synchronous iterators", Warning
)

USE_TZ = True
TIME_ZONE = "UTC"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"channelworks": {"handlers": ["console"], "level": "WARNING"}},
}
