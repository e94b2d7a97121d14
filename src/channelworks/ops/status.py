"""``channelworks status``: every process's snapshot, asked through the channel layer, as text.

It needs the site's settings (``--settings`` or ``DJANGO_SETTINGS_MODULE``) for
``CHANNEL_LAYERS``: only a layer shared by the processes (Redis, RabbitMQ) reaches them all.
Exit status: 0 when at least one process answered, 1 when none did, 2 when no layer is
configured, 3 when the layer cannot reach its broker (Redis or RabbitMQ down: when no
process answers, a probe sent through the layer tells the two apart).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from channelworks import DEFAULT_CHANNEL_LAYER
from channelworks.exceptions import ChannelFull, LayerUnavailable

if TYPE_CHECKING:
    from channelworks.layers.base import BaseChannelLayer

#: the normal channel the probe goes through (shared by every run: each takes one back)
PROBE = "channelworks.ops.probe"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--settings", metavar="MODULE", help="Django settings module to use")
    parser.add_argument(
        "--layer", default=DEFAULT_CHANNEL_LAYER, help="channel layer alias (%(default)s)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=1.0,
        help="seconds to wait for the processes' answers (%(default)s)",
    )
    parser.add_argument(
        "--limit", type=int, default=50, help="connections listed per process (%(default)s)"
    )
    parser.add_argument("--json", action="store_true", help="print the snapshots as JSON")


def run(args: argparse.Namespace) -> int:
    if args.settings:
        os.environ["DJANGO_SETTINGS_MODULE"] = args.settings
    import django

    django.setup()
    return asyncio.run(_run(args, sys.stdout))


async def _run(args: argparse.Namespace, out: TextIO) -> int:
    from channelworks.layers.registry import get_channel_layer
    from channelworks.lifespan import close_channel_layers
    from channelworks.ops.control import gather

    layer = get_channel_layer(args.layer)
    if layer is None:
        print(f"No channel layer {args.layer!r} is configured (CHANNEL_LAYERS).", file=out)
        return 2
    backend = type(layer).__name__
    try:
        snapshots = await gather(layer, timeout=args.timeout, limit=args.limit)
        failure = None if snapshots else await _unreachable(layer, args.timeout)
    except (LayerUnavailable, OSError) as exc:  # said in one line, not a traceback
        snapshots, failure = [], exc
    finally:
        await close_channel_layers()
    if failure is not None:
        print(
            f"The channel layer {args.layer!r} ({backend}) cannot reach its broker, so no "
            f"process can be asked: {type(failure).__name__}: {failure}",
            file=out,
        )
        return 3
    if args.json:
        json.dump(snapshots, out, indent=2, default=str)
        out.write("\n")
    else:
        out.write(render(snapshots, layer=args.layer, backend=backend))
    return 0 if snapshots else 1


async def _unreachable(layer: BaseChannelLayer, timeout: float) -> Exception | None:
    """Why no process answered if it is the layer: the error of a send to a normal channel
    (it goes through the broker; a group send to processes is not awaited that far), else
    ``None``. The probe is taken back, so it leaves nothing behind."""
    from channelworks.ops.control import process_local

    if process_local(layer):
        return None
    try:
        await layer.send(PROBE, {"type": "ops.probe"})
    except ChannelFull:  # the broker answered
        return None
    except Exception as exc:
        return exc
    with contextlib.suppress(Exception):
        async with asyncio.timeout(max(timeout, 1.0)):
            await layer.receive(PROBE)
    return None


def render(snapshots: Sequence[dict[str, Any]], *, layer: str, backend: str) -> str:
    """The snapshots as a terminal report."""
    lines = [
        f"{len(snapshots)} process(es) answered on layer {layer!r} ({backend})",
    ]
    if not snapshots:
        lines.append(
            "None answered: processes join with their first WebSocket connection, and only "
            "a layer they share (Redis, RabbitMQ) reaches them."
        )
    groups: dict[str, int] = {}
    layers: dict[str, dict[str, int]] = {}
    limits: dict[str, int] = {}
    for snap in snapshots:
        _add_into(groups, snap.get("groups", {}))
        for alias, counters in snap.get("layers", {}).items():
            _add_into(layers.setdefault(alias, {}), counters)
        _add_into(limits, snap.get("limits", {}))
        lines.append("")
        lines.append(
            f"process {snap.get('process') or '-'}  pid {snap['pid']} on {snap['host']}  "
            f"up {_duration(snap['now'] - snap['started'])}  "
            f"connections {snap['connections_total']}"
        )
        rows = [
            (
                c["id"],
                c["route"],
                c["username"] or (c["user_id"] or "-"),
                c["client"] or "-",
                _duration(snap["now"] - c["since"]),
                str(c["frames_in"]),
                str(c["frames_out"]),
                ",".join(c["groups"] + c["topics"]) or "-",
            )
            for c in snap.get("connections", [])
        ]
        if rows:
            header = ("ID", "ROUTE", "USER", "CLIENT", "AGE", "IN", "OUT", "GROUPS/TOPICS")
            lines.extend("  " + line for line in _table([header, *rows]))
        hidden = snap["connections_total"] - len(rows)
        if hidden > 0:
            lines.append(f"  ... and {hidden} more (--limit)")
    if groups:
        lines.append("")
        lines.append("groups (members across processes):")
        lines.extend(f"  {name}  {count}" for name, count in sorted(groups.items()))
    for alias, counters in sorted(layers.items()):
        lines.append("")
        lines.append(f"layer {alias!r} counters (summed over processes):")
        lines.append("  " + _pairs(counters))
    if limits:
        lines.append("")
        lines.append("limits (summed over processes):")
        lines.append("  " + _pairs(limits))
    return "\n".join(lines) + "\n"


def _add_into(total: dict[str, int], values: dict[str, int]) -> None:
    for key, value in values.items():
        total[key] = total.get(key, 0) + value


def _pairs(values: dict[str, int]) -> str:
    return " ".join(f"{key}={value}" for key, value in values.items())


def _table(rows: Iterable[Sequence[str]]) -> list[str]:
    rows = list(rows)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _duration(seconds: float) -> str:
    seconds = max(int(seconds), 0)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


__all__ = ["add_arguments", "render", "run"]
