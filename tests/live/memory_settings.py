"""The suite's settings with an in-memory SQLite test database (and no PostgreSQL alias).

``test_memory_database`` runs ``memory_cases`` under these settings in a fresh process, with
Django's test runner (in parallel) and with pytest-django.
"""

from __future__ import annotations

from tests.settings import *  # noqa: F403

DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
}
