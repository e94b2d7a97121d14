"""Figure 13: a reconnect storm on a fresh server, with database-backed Django sessions.

Per database (SQLite in a file; PostgreSQL on 127.0.0.1:5432 if it answers), the sessions are
made first (``benchmarks.storm_setup``: a user logged in per session). Then, per contender, a
fresh server starts (as after a restart) and every client connects at once with its session
cookie (``clients/storm.py``); the figure is the time until all are connected. channelworks
and Channels serve ``AuthMiddlewareStack`` around a consumer that accepts logged-in users only
(apps/storm_*.py), so each handshake loads its session and its user from the database; raw
accepts the same handshakes without looking at them.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import tempfile
from collections.abc import Iterator, Sequence

from benchmarks.apps.storm_settings import VARIABLE
from benchmarks.figures.common import APPS, Say, attempt, record_error
from benchmarks.processes import run_client, run_module
from benchmarks.results import Kind, Results, Row
from benchmarks.server import running_server
from benchmarks.sizes import Sizes

STORM_APPS = {
    "raw": APPS["raw"],
    "channelworks": "benchmarks.apps.storm_channelworks:application",
    "channels": "benchmarks.apps.storm_channels:application",
}

#: the PostgreSQL database the figure makes (and keeps) for itself
POSTGRES_NAME = "channelworks_bench_storm"


def postgres_reachable() -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", 5432), 1):
        return True
    return False


@contextlib.contextmanager
def storm_database(spec: str) -> Iterator[None]:
    """``CWBENCH_STORM_DB`` set to ``spec`` while the block runs (servers inherit it)."""
    previous = os.environ.get(VARIABLE)
    os.environ[VARIABLE] = spec
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(VARIABLE, None)
        else:
            os.environ[VARIABLE] = previous


def run_storm(contenders: Sequence[str], sizes: Sizes, results: Results, say: Say) -> None:
    count = sizes.storm_clients
    say(f"\n== Reconnect storm: {count:,} clients with database sessions connect at once ==")
    with tempfile.TemporaryDirectory(prefix="cwbench-storm-") as folder:
        databases = [("sqlite", f"sqlite:{os.path.join(folder, 'storm.sqlite3')}")]
        if postgres_reachable():
            databases.append(("postgres", f"postgres:{POSTGRES_NAME}"))
        else:
            say("  PostgreSQL not reachable on 127.0.0.1:5432: its row is skipped")
        keys_file = os.path.join(folder, "keys.json")
        for label, spec in databases:
            row = results.row(
                f"storm_{label}", f"storm of {count:,}, {label} sessions", "ms", Kind.SECONDS
            )
            with storm_database(spec):
                try:
                    run_module(["benchmarks.storm_setup", str(count), keys_file], 600)
                except Exception as exc:
                    for contender in contenders:
                        record_error(exc, [row], contender, say)
                    continue
                for contender in contenders:
                    measure = functools.partial(
                        _measure, contender, row, label, count, keys_file, sizes, say
                    )
                    attempt(measure, [row], contender, say)


def _measure(
    contender: str, row: Row, label: str, count: int, keys_file: str, sizes: Sizes, say: Say
) -> None:
    with running_server(STORM_APPS[contender]) as server:
        outcome = run_client("storm", server, "/who", sizes.client_time_limit, keys_file=keys_file)
    if outcome["failed"]:
        raise RuntimeError(
            f"{outcome['failed']} of {count} failed to connect, first: {outcome['first_error']}"
        )
    row.values[contender] = outcome["seconds"]
    say(f"  {label:<8} {contender:<12} all connected in {outcome['seconds']:.2f} s")
