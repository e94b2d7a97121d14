"""The final table and the targets, as text."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from benchmarks.results import CONTENDERS, Kind, Results, Row

KIB = 1024


def format_value(row: Row, value: float) -> str:
    if row.kind is Kind.RATE:
        return f"{value:,.0f}"
    if row.kind is Kind.BYTES:
        return f"{value / KIB:.2f}"
    if row.unit.startswith("µs"):
        return f"{value * 1e6:.1f}"
    return f"{value * 1e3:.3f}"


def compare(row: Row) -> str:
    """Each framework against raw, or channelworks against Channels where raw has no value."""
    raw = row.values.get("raw")
    ours, theirs = row.values.get("channelworks"), row.values.get("channels")
    parts: list[str] = []
    if raw:
        for name in ("channelworks", "channels"):
            value = row.values.get(name)
            if value is None:
                continue
            if row.kind is Kind.BYTES:
                parts.append(f"{name} {(value - raw) / KIB:+.2f} KiB vs raw")
            else:
                parts.append(f"{name} {value / raw:.2f}x raw")
    elif ours and theirs:
        if row.kind is Kind.RATE:
            parts.append(f"channelworks {ours / theirs:.1f}x channels")
        elif row.unit.startswith("µs/op"):
            parts.append(f"channelworks uses {ours / theirs:.2f}x channels' CPU")
        elif row.kind is Kind.SECONDS:
            parts.append(f"channelworks {theirs / ours:.1f}x faster than channels")
    return "; ".join(parts)


def cell(row: Row, contender: str) -> str:
    if contender in row.values:
        return format_value(row, row.values[contender])
    if contender in row.errors:
        return "error"
    return "-"


def table(results: Results) -> str:
    headers = ["figure", "unit", *CONTENDERS, "comparison"]
    lines = [
        [row.title, row.unit, *(cell(row, c) for c in CONTENDERS), compare(row)]
        for row in results.rows
    ]
    widths = [max(len(line[i]) for line in [headers, *lines]) for i in range(len(headers))]
    right = {2, 3, 4}

    def render(line: list[str]) -> str:
        return "  ".join(
            text.rjust(widths[i]) if i in right else text.ljust(widths[i])
            for i, text in enumerate(line)
        ).rstrip()

    rule = "-" * len(render(headers))
    out = [rule, render(headers), rule, *(render(line) for line in lines), rule]
    failures: dict[tuple[str, str], list[str]] = {}
    for row in results.rows:
        for who, why in row.errors.items():
            failures.setdefault((who, why), []).append(row.key)
    if failures:
        out.append("errors:")
        out += [f"  {who} [{', '.join(keys)}]: {why}" for (who, why), keys in failures.items()]
    return "\n".join(out)


@dataclass(frozen=True)
class Target:
    name: str
    goal: str
    reference: str
    measure: Callable[[Results], tuple[str, bool] | None]


def _ratio(key: str, least: float) -> Callable[[Results], tuple[str, bool] | None]:
    def measure(results: Results) -> tuple[str, bool] | None:
        raw, ours = results.get(key, "raw"), results.get(key, "channelworks")
        if not raw or ours is None:
            return None
        theirs = results.get(key, "channels")
        extra = f" (channels {theirs / raw:.2f}x)" if theirs is not None else ""
        return f"{ours / raw:.2f}x raw{extra}", ours / raw >= least

    return measure


def _group_send(results: Results) -> tuple[str, bool] | None:
    ours = results.get("group_send_1000", "channelworks")
    if ours is None:
        return None
    theirs = results.get("group_send_1000", "channels")
    extra = f" (channels {theirs * 1e3:.1f} ms)" if theirs is not None else ""
    return f"{ours * 1e3:.3f} ms{extra}", ours <= 0.002


def _memory(results: Results) -> tuple[str, bool] | None:
    raw, ours = results.get("memory_rss", "raw"), results.get("memory_rss", "channelworks")
    if raw is None or ours is None:
        return None
    theirs = results.get("memory_rss", "channels")
    extra = f" (channels {(theirs - raw) / KIB:+.2f} KiB)" if theirs is not None else ""
    return f"{(ours - raw) / KIB:+.2f} KiB/conn vs raw{extra}", ours - raw <= 3 * KIB


TARGETS = [
    Target("echo", "channelworks >= 0.9x raw", "Channels about 0.3x", _ratio("echo", 0.9)),
    Target("fan-out", "channelworks >= 0.8x raw", "Channels about 0.2x", _ratio("fanout", 0.8)),
    Target(
        "group_send 1000",
        "channelworks call median <= 2 ms",
        "Channels about 250 ms",
        _group_send,
    ),
    Target(
        "memory/idle conn",
        "channelworks <= 3 KiB above raw (RSS)",
        "Channels about +10 KiB",
        _memory,
    ),
]


def targets(results: Results) -> str:
    out = ["Targets:"]
    for target in TARGETS:
        found = target.measure(results)
        if found is None:
            status, figure = "NOT MEASURED", "-"
        else:
            figure, met = found
            status = "MET" if met else "MISSED"
        out.append(
            f"  [{status:^12}] {target.name:<16} {target.goal:<38} got {figure}"
            f"   [brief: {target.reference}]"
        )
    return "\n".join(out)
