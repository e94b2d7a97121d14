"""``python -m benchmarks.storm_setup COUNT KEYS_FILE``: the sessions of figure 13.

With ``CWBENCH_STORM_DB`` set (apps/storm_settings.py): creates the PostgreSQL database if it
is missing, migrates, empties the users and sessions, then makes ``COUNT`` users, each logged
in in a session of its own (as ``login()`` leaves it), writes the session keys to
``KEYS_FILE`` as a JSON list and prints ``{"sessions": COUNT}``.
"""

from __future__ import annotations

import json
import os
import sys

from benchmarks.apps.storm_settings import VARIABLE, configure, database


def _create_postgres_database(spec: str) -> None:
    import psycopg

    config = database(spec)
    with psycopg.connect(
        host=config["HOST"],
        port=config["PORT"],
        user=config["USER"],
        dbname="postgres",
        autocommit=True,
    ) as connection:
        found = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (config["NAME"],)
        ).fetchone()
        if found is None:
            connection.execute(f'CREATE DATABASE "{config["NAME"]}"')


def main(argv: list[str]) -> None:
    count, keys_file = int(argv[0]), argv[1]
    spec = os.environ[VARIABLE]
    if spec.startswith("postgres:"):
        _create_postgres_database(spec)
    configure()
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import User
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    Session.objects.all().delete()
    User.objects.all().delete()
    users = User.objects.bulk_create(
        User(username=f"storm-{index}", password="!") for index in range(count)
    )
    keys = []
    for user in User.objects.filter(pk__in=[user.pk for user in users]):
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        keys.append(session.session_key)
    with open(keys_file, "w") as out:
        json.dump(keys, out)
    print(json.dumps({"sessions": len(keys)}), flush=True)  # the line run_module reads


if __name__ == "__main__":
    main(sys.argv[1:])
