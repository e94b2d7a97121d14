"""Settings of the command tests' project (``--settings=tests.commands.project.settings``)."""

from __future__ import annotations

import json
import os

SECRET_KEY = "channelworks-command-tests-not-a-secret"
DEBUG = True  # static files are served under DEBUG
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
INSTALLED_APPS = [
    "channelworks",  # before staticfiles, whose runserver would otherwise win
    "django.contrib.staticfiles",
    "tests.commands.project",
]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "tests.commands.project.urls"
ASGI_APPLICATION = "tests.commands.project.asgi.application"
STATIC_URL = "static/"
DATABASES: dict[str, dict[str, object]] = {}
# CHANNELWORKS_TEST_CHANNEL_LAYERS (JSON) puts another layer in, for tests of real servers
CHANNEL_LAYERS = json.loads(os.environ.get("CHANNELWORKS_TEST_CHANNEL_LAYERS", "null")) or {
    "default": {"BACKEND": "channelworks.layers.InMemoryChannelLayer"}
}
