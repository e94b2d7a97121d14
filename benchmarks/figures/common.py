"""What the figure runners share: the apps, failure recording, servers run side by side.

Throughput figures are noisy on a 2-core machine that other processes share, so their passes
are interleaved across contenders (raw, channelworks, Channels, raw, ...) against servers that
all stay up (an idle server costs no CPU), and the best pass is the figure: noise only ever
slows a pass down.
"""

from __future__ import annotations

import contextlib
import statistics
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from benchmarks.results import Kind, Results, Row
from benchmarks.server import Server, running_server
from benchmarks.sizes import Sizes

APPS = {
    "raw": "benchmarks.apps.raw:application",
    "channelworks": "benchmarks.apps.channelworks_app:application",
    "channels": "benchmarks.apps.channels_app:application",
}

Say = Callable[[str], None]
Runner = Callable[[Sequence[str], Sizes, Results, Say], None]
Outcome = dict[str, Any]


def record_error(exc: Exception, rows: Sequence[Row], contender: str, say: Say) -> None:
    say(f"  {contender:<12} FAILED: {exc}")
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    summary = " ... ".join(dict.fromkeys([lines[0], lines[-1]])) if lines else repr(exc)
    for row in rows:
        row.errors[contender] = summary[:300]


def attempt(measure: Callable[[], None], rows: Sequence[Row], contender: str, say: Say) -> None:
    """Run ``measure``; if it raises, record the error for ``contender`` in ``rows``."""
    try:
        measure()
    except Exception as exc:
        record_error(exc, rows, contender, say)


@contextlib.contextmanager
def side_by_side(
    contenders: Sequence[str], rows: Sequence[Row], say: Say
) -> Iterator[dict[str, Server]]:
    """One server per contender, all running until the block ends; failures are recorded."""
    with contextlib.ExitStack() as stack:
        servers: dict[str, Server] = {}
        for contender in contenders:
            try:
                servers[contender] = stack.enter_context(running_server(APPS[contender]))
            except Exception as exc:
                record_error(exc, rows, contender, say)
        yield servers


def interleaved(
    servers: dict[str, Server],
    passes: int,
    drive: Callable[[str, Server], Outcome],
    rows: Sequence[Row],
    say: Say,
) -> dict[str, list[Outcome]]:
    """Run ``drive`` ``passes`` times per contender, taking turns; stop a contender that fails."""
    outcomes: dict[str, list[Outcome]] = {contender: [] for contender in servers}
    failed: set[str] = set()
    for _ in range(passes):
        for contender, server in servers.items():
            if contender in failed:
                continue
            try:
                outcomes[contender].append(drive(contender, server))
            except Exception as exc:
                record_error(exc, rows, contender, say)
                failed.add(contender)
    return {contender: found for contender, found in outcomes.items() if contender not in failed}


def throughput_rows(results: Results, key: str, title: str, unit: str) -> tuple[Row, Row]:
    """The rate row and its server-CPU-per-operation companion."""
    return (
        results.row(key, title, unit, Kind.RATE),
        results.row(f"{key}_cpu", f"{title}: server CPU", "µs/op", Kind.SECONDS),
    )


def record_throughput(
    rows: tuple[Row, Row], contender: str, outcomes: Sequence[Outcome], say: Say
) -> None:
    """Store the best pass's rate and the server CPU per operation; print the details."""
    rate_row, cpu_row = rows
    rates = [rate for outcome in outcomes for rate in outcome["rates"]]
    operations = sum(outcome["operations"] for outcome in outcomes)
    server = sum(outcome["server_cpu_s"] for outcome in outcomes) / operations
    client = sum(outcome["client_cpu_s"] for outcome in outcomes) / operations
    rate_row.values[contender] = max(rates)
    cpu_row.values[contender] = server
    passes = ", ".join(f"{rate:,.0f}" for rate in rates)
    say(
        f"  {contender:<12} best {max(rates):>9,.0f}, median {statistics.median(rates):>9,.0f} "
        f"{rate_row.unit}  (passes: {passes}; server CPU {server * 1e6:.1f} µs/op, "
        f"client CPU {client * 1e6:.1f} µs/op)"
    )
