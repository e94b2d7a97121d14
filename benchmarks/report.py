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


def _column(contender: str) -> int:
    return CONTENDERS.index(contender) if contender in CONTENDERS else len(CONTENDERS)


def columns(results: Results) -> list[str]:
    """The contenders, plus any other a row has (the Redis rows' ``channels_pubsub``)."""
    found = {c for row in results.rows for c in (*row.values, *row.errors)}
    return [*CONTENDERS, *sorted(found - set(CONTENDERS))]


def compare(row: Row) -> str:
    """Each framework against raw, or channelworks against the others where raw has no value."""
    raw = row.values.get("raw")
    ours = row.values.get("channelworks")
    others = sorted((c for c in row.values if c != "raw"), key=_column)
    parts: list[str] = []
    if raw:
        for name in others:
            value = row.values[name]
            if row.kind is Kind.BYTES:
                parts.append(f"{name} {(value - raw) / KIB:+.2f} KiB vs raw")
            else:
                parts.append(f"{name} {value / raw:.2f}x raw")
    elif ours:
        for name in others:
            theirs = row.values[name]
            if name == "channelworks" or not theirs:
                continue
            if row.kind is Kind.RATE:
                parts.append(f"channelworks {ours / theirs:.1f}x {name}")
            elif row.unit.startswith("µs/"):
                parts.append(f"channelworks uses {ours / theirs:.2f}x the CPU of {name}")
            elif row.kind is Kind.SECONDS and theirs >= ours:
                parts.append(f"channelworks {theirs / ours:.1f}x faster than {name}")
            elif row.kind is Kind.SECONDS:
                parts.append(f"channelworks {ours / theirs:.1f}x slower than {name}")
    return "; ".join(parts)


def cell(row: Row, contender: str) -> str:
    if contender in row.values:
        return format_value(row, row.values[contender])
    if contender in row.errors:
        return "error"
    return "-"


def table(results: Results) -> str:
    contenders = columns(results)
    headers = ["figure", "unit", *contenders, "comparison"]
    lines = [
        [row.title, row.unit, *(cell(row, c) for c in contenders), compare(row)]
        for row in results.rows
    ]
    widths = [max(len(line[i]) for line in [headers, *lines]) for i in range(len(headers))]
    right = set(range(2, 2 + len(contenders)))

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


def _ratio(
    key: str, least: float, others: tuple[str, ...] = ("channels",)
) -> Callable[[Results], tuple[str, bool] | None]:
    def measure(results: Results) -> tuple[str, bool] | None:
        raw, ours = results.get(key, "raw"), results.get(key, "channelworks")
        if not raw or ours is None:
            return None
        found = {name: results.get(key, name) for name in others}
        theirs = [f"{name} {value / raw:.2f}x" for name, value in found.items() if value]
        extra = f" ({', '.join(theirs)})" if theirs else ""
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


def _crowd(results: Results) -> tuple[str, bool] | None:
    raw, ours = results.get("crowd_rss", "raw"), results.get("crowd_rss", "channelworks")
    delivered = results.get("crowd_delivery", "channelworks")
    if raw is None or ours is None or delivered is None:
        return None
    theirs = results.get("crowd_rss", "channels")
    extra = f" (channels {(theirs - raw) / KIB:+.2f} KiB)" if theirs is not None else ""
    text = f"{(ours - raw) / KIB:+.2f} KiB/conn vs raw{extra}, all got it in {delivered:.3f} s"
    return text, ours - raw <= 3 * KIB and delivered <= 1.0


def _storm(label: str) -> Callable[[Results], tuple[str, bool] | None]:
    """channelworks <= 2x raw and faster than Channels, for the sessions in ``label``."""

    def measure(results: Results) -> tuple[str, bool] | None:
        key = f"storm_{label}"
        raw, ours = results.get(key, "raw"), results.get(key, "channelworks")
        if not raw or ours is None:
            return None
        theirs = results.get(key, "channels")
        extra = f" (channels {theirs / raw:.2f}x)" if theirs else ""
        faster = theirs is None or ours < theirs
        return f"{ours / raw:.2f}x raw, {ours:.2f} s{extra}", ours / raw <= 2 and faster

    return measure


def _best_p2p(
    results: Results, contender: str, prefix: str = "redis_p2p_"
) -> tuple[float, int] | None:
    """A contender's better send+receive mode (rows ``{prefix}{tasks}``): (messages/s, tasks)."""
    best: tuple[float, int] | None = None
    for row in results.rows:
        tasks = row.key.removeprefix(prefix)
        if row.key.startswith(prefix) and tasks.isdigit() and contender in row.values:
            found = (row.values[contender], int(tasks))
            best = found if best is None or found > best else best
    return best


def _p2p_text(rate: float, tasks: int) -> str:
    return f"{rate:,.0f}/s ({tasks} task{'s' if tasks > 1 else ''})"


def _redis_p2p(other: str | None, least: float) -> Callable[[Results], tuple[str, bool] | None]:
    """channelworks' better mode >= ``least`` messages/s, or >= ``least`` x ``other``'s."""

    def measure(results: Results) -> tuple[str, bool] | None:
        ours = _best_p2p(results, "channelworks")
        if ours is None:
            return None
        if other is None:
            return _p2p_text(*ours), ours[0] >= least
        theirs = _best_p2p(results, other)
        if theirs is None:
            return None
        ratio = ours[0] / theirs[0]
        return f"{ratio:.1f}x: {_p2p_text(*ours)} vs {_p2p_text(*theirs)}", ratio >= least

    return measure


def _redis_group_send(results: Results) -> tuple[str, bool] | None:
    ours = results.get("redis_group_send_1000", "channelworks")
    if ours is None:
        return None
    found = {name: results.get("redis_group_send_1000", name) for name in REDIS_OTHERS}
    theirs = [f"{name} {value * 1e3:.1f} ms" for name, value in found.items() if value]
    extra = f" ({', '.join(theirs)})" if theirs else ""
    return f"{ours * 1e3:.3f} ms{extra}", ours <= 0.003


def _rabbitmq_p2p(results: Results) -> tuple[str, bool] | None:
    """channelworks' better mode >= 3x channels_rabbitmq's better mode."""
    ours = _best_p2p(results, "channelworks", "rabbitmq_p2p_")
    theirs = _best_p2p(results, "channels", "rabbitmq_p2p_")
    if ours is None or theirs is None:
        return None
    ratio = ours[0] / theirs[0]
    return f"{ratio:.1f}x: {_p2p_text(*ours)} vs {_p2p_text(*theirs)}", ratio >= 3


def _rabbitmq_group(row_prefix: str) -> Callable[[Results], tuple[str, bool] | None]:
    """channelworks >= 3x faster than channels_rabbitmq at every measured group size."""

    def measure(results: Results) -> tuple[str, bool] | None:
        ratios: list[tuple[int, float]] = []
        for row in results.rows:
            size = row.key.removeprefix(row_prefix)
            if not row.key.startswith(row_prefix) or not size.isdigit():
                continue
            ours, theirs = row.values.get("channelworks"), row.values.get("channels")
            if ours and theirs:
                ratios.append((int(size), theirs / ours))
        if not ratios:
            return None
        text = ", ".join(f"{size}: {ratio:.1f}x" for size, ratio in sorted(ratios))
        return text, all(ratio >= 3 for _, ratio in ratios)

    return measure


def _alternated(results: Results, figure: str) -> tuple[float, str] | None:
    """``figure_on`` over ``figure_off`` (passes alternating on one server), and the server
    CPU ratio as text; ``None`` if either was not measured."""
    on = results.get(f"{figure}_on", "channelworks")
    off = results.get(f"{figure}_off", "channelworks")
    if not on or not off:
        return None
    cpu_on = results.get(f"{figure}_on_cpu", "channelworks")
    cpu_off = results.get(f"{figure}_off_cpu", "channelworks")
    cpu = f", server CPU {cpu_on / cpu_off:.3f}x" if cpu_on and cpu_off else ""
    return on / off, cpu


def _limits_cost(results: Results) -> tuple[str, bool] | None:
    found = _alternated(results, "limits_echo")
    if found is None:
        return None
    ratio, cpu = found
    return f"{ratio:.3f}x of limits off ({1 - ratio:+.1%} cost{cpu})", ratio >= 0.97


def _metrics_cost(results: Results) -> tuple[str, bool] | None:
    found = _alternated(results, "metrics_echo")
    if found is None:
        return None
    ratio, cpu = found
    added_on = results.get("metrics_inproc_on", "channelworks")
    added_off = results.get("metrics_inproc_off", "channelworks")
    added = (
        f", +{(added_on - added_off) * 1e6:.2f} µs/msg in process" if added_on and added_off else ""
    )
    return f"{ratio:.3f}x of unobserved{cpu}{added}", ratio >= 0.95


def _flood(results: Results) -> tuple[str, bool] | None:
    """The quiet client's median while flooded, against alone: each policy, <= 2x."""
    found: list[tuple[str, float, float]] = []
    for policy in ("close", "drop"):
        alone = results.get(f"flood_{policy}_quiet", "channelworks")
        flooded = results.get(f"flood_{policy}_loaded", "channelworks")
        if alone and flooded is not None:
            found.append((policy, alone, flooded))
    if not found:
        return None
    text = "; ".join(
        f"{policy} {flooded / alone:.2f}x ({alone * 1e3:.3f} -> {flooded * 1e3:.3f} ms)"
        for policy, alone, flooded in found
    )
    return text, all(flooded / alone <= 2 for _, alone, flooded in found)


#: the channels_redis layers of the Redis rows: core (column channels) and pub/sub
REDIS_OTHERS = ("channels", "channels_pubsub")

TARGETS = [
    Target("echo", "channelworks >= 0.9x raw", "Channels about 0.3x", _ratio("echo", 0.9)),
    Target(
        "echo sync",
        "channelworks >= 0.5x raw",
        "was 0.21x; Channels 0.12x",
        _ratio("echo_sync", 0.5),
    ),
    Target("fan-out", "channelworks >= 0.8x raw", "Channels about 0.2x", _ratio("fanout", 0.8)),
    Target(
        "fan-out sync",
        "channelworks >= 0.5x raw",
        "tutorial's room; was 0.12x",
        _ratio("fanout_sync", 0.5),
    ),
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
    Target(
        "storm sqlite",
        "channelworks <= 2x raw, faster than channels",
        "2,000 session handshakes at once",
        _storm("sqlite"),
    ),
    Target(
        "storm postgres",
        "channelworks <= 2x raw, faster than channels",
        "2,000 session handshakes at once",
        _storm("postgres"),
    ),
    Target(
        "10k in a room",
        "<= 3 KiB/conn above raw, one message to all <= 1 s",
        "10,000 idle connections, one process",
        _crowd,
    ),
    Target(
        "limits cost",
        "echo with limits >= 0.97x limits off",
        "same server, alternating passes",
        _limits_cost,
    ),
    Target(
        "metrics cost",
        "echo observed >= 0.95x unobserved",
        "same server, alternating passes",
        _metrics_cost,
    ),
    Target(
        "flood",
        "quiet client's median echo <= 2x",
        "was 0.66 -> 43 ms before limits",
        _flood,
    ),
    Target(
        "redis p2p",
        "channelworks >= 30,000 messages/s",
        "better mode; core about 600/s",
        _redis_p2p(None, 30_000),
    ),
    Target(
        "redis p2p/pubsub",
        "channelworks >= 10x channels_pubsub",
        "each one's better mode",
        _redis_p2p("channels_pubsub", 10),
    ),
    Target(
        "redis p2p/core",
        "channelworks >= 50x channels (core)",
        "each one's better mode",
        _redis_p2p("channels", 50),
    ),
    Target(
        "redis group 1000",
        "channelworks call median <= 3 ms",
        "core about 74 ms, pub/sub 11 ms",
        _redis_group_send,
    ),
    Target(
        "redis fan-out",
        "channelworks >= 0.7x raw",
        "raw = in-process broadcast",
        _ratio("redis_fanout", 0.7, REDIS_OTHERS),
    ),
    Target(
        "redis fan-out sync",
        "channelworks >= 0.5x raw",
        "tutorial's room, Redis layer",
        _ratio("redis_fanout_sync", 0.5, REDIS_OTHERS),
    ),
    Target(
        "rabbitmq p2p",
        "channelworks >= 3x channels_rabbitmq",
        "each one's better mode",
        _rabbitmq_p2p,
    ),
    Target(
        "rabbitmq group",
        "call >= 3x faster, each size",
        "channels_rabbitmq awaits its confirm",
        _rabbitmq_group("rabbitmq_group_send_"),
    ),
    Target(
        "rabbitmq grp all",
        "all got it >= 3x faster, each size",
        "bound by 2 broker hops: docs/rabbitmq.md",
        _rabbitmq_group("rabbitmq_group_round_"),
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
