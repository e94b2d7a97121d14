"""Figures 8-9: the RabbitMQ layers side by side on one RabbitMQ (127.0.0.1:5672, guest).

The contenders are channelworks' ``RabbitMQChannelLayer`` (column ``channelworks``) and
channels_rabbitmq's ``RabbitmqChannelLayer`` (column ``channels``, in the bench group). The
workers are ``benchmarks.rabbitmq_bench`` processes playing benchmarks/redis_bench.py's roles.

- ``rabbitmq_p2p``: send+receive between two OS processes, one sender task awaiting each send
  and ``redis_p2p_tasks`` tasks at once; passes interleaved, the best counts;
- ``rabbitmq_group``: ``group_send`` to each of ``group_sizes`` members (10/100/1000) made by
  the layer in one receiving process and drained there; each round waits until every member
  has the message. Rows: the median call time, and the median time until all got it (+ack).
  channelworks' ``group_send`` returns once the publish is written (its confirm is handled
  in the background); channels_rabbitmq's waits for the confirm: the "all got it" row is
  the like-for-like one.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from typing import IO

from benchmarks.figures.common import Outcome, Say, record_error
from benchmarks.figures.redis import START_TIMEOUT, Worker
from benchmarks.procstat import read_cpu_seconds
from benchmarks.rabbitmq_bench import RABBITMQ_URL
from benchmarks.results import Kind, Results, Row
from benchmarks.sizes import Sizes

RUN = f"cwbench-{secrets.token_hex(4)}"
LEGEND = (
    "NOTE: in the RabbitMQ rows, channels = channels_rabbitmq's RabbitmqChannelLayer and "
    "channelworks = channelworks.layers.rabbitmq.RabbitMQChannelLayer, both with defaults."
)


def delete_leftovers(prefixes: Sequence[str]) -> None:
    """Delete what the workers of ``prefixes`` leave in RabbitMQ: their acknowledgement queue
    and the groups exchange (both layers keep theirs for other processes); best effort."""

    async def delete() -> None:
        import aiormq

        connection = await aiormq.connect(RABBITMQ_URL)
        try:
            channel = await connection.channel()
            for prefix in prefixes:
                await channel.queue_delete(f"{prefix}.bench-ack")
                await channel.exchange_delete(f"{prefix}.groups")
        finally:
            await connection.close()

    try:
        asyncio.run(asyncio.wait_for(delete(), 30))
    except Exception as exc:  # the figures are measured; a leftover is not worth failing them
        print(f"  (could not delete the RabbitMQ leftovers of this run: {exc!r})", flush=True)


def rabbitmq_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 5672), 2).close()
    except OSError:
        return False
    return True


def contenders_of(contenders: Sequence[str], results: Results, say: Say) -> list[str]:
    if not rabbitmq_up():
        note = "NOTE: the RabbitMQ figures are skipped: RabbitMQ is not at 127.0.0.1:5672"
        if note not in results.notes:
            say(note)
            results.notes.append(note)
        return []
    chosen = [c for c in contenders if c == "channelworks"]
    if "channels" in contenders:
        if importlib.util.find_spec("channels_rabbitmq") is not None:
            chosen.append("channels")
            if LEGEND not in results.notes:
                say(LEGEND)
                results.notes.append(LEGEND)
        else:
            say("  channels_rabbitmq is not installed (bench group): its lines are skipped")
    return chosen


class RabbitWorker(Worker):
    """A ``benchmarks.rabbitmq_bench`` process (the Redis worker's protocol)."""

    def __init__(
        self, role: str, layer: str, prefix: str, *options: str, limit: float, log: IO[str]
    ) -> None:
        self.role = role
        self.log = log
        command = [sys.executable, "-m", "benchmarks.rabbitmq_bench", role, "--layer", layer]
        command += ["--prefix", prefix, "--ack-key", f"{prefix}.bench-ack", *options]
        command += ["--time-limit", str(limit)]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, bufsize=0
        )
        self._pending = b""


@contextlib.contextmanager
def worker(role: str, layer: str, prefix: str, *options: str, limit: float) -> Iterator[Worker]:
    with tempfile.TemporaryFile(mode="w+") as log:
        started = RabbitWorker(role, layer, prefix, *options, limit=limit, log=log)
        try:
            yield started
        finally:
            started.stop()


def run_rabbitmq_p2p(contenders: Sequence[str], sizes: Sizes, results: Results, say: Say) -> None:
    tasks = sizes.redis_p2p_tasks
    say(
        f"\n== RabbitMQ send+receive between two processes: {sizes.redis_p2p_seconds:g} s of "
        f"sending per pass, 1 or {tasks} sender tasks, passes interleaved =="
    )
    chosen = contenders_of(contenders, results, say)
    if not chosen:
        return
    rows: dict[int, Row] = {}
    for count in (1, tasks):
        what = "1 sender task" if count == 1 else f"{count} sender tasks"
        rows[count] = results.row(
            f"rabbitmq_p2p_{count}",
            f"RabbitMQ send+receive, 2 processes, {what}",
            "messages/s",
            Kind.RATE,
        )
    limit = sizes.client_time_limit
    found: dict[tuple[str, int], list[Outcome]] = {}
    with contextlib.ExitStack() as stack:
        stack.callback(delete_leftovers, [f"{RUN}-p2p-{name}" for name in chosen])
        pairs: dict[str, tuple[Worker, Worker]] = {}
        for name in chosen:
            try:
                prefix = f"{RUN}-p2p-{name}"
                receiver = stack.enter_context(worker("p2p-receive", name, prefix, limit=limit))
                channel = receiver.read(START_TIMEOUT)["channel"]
                sender = stack.enter_context(
                    worker("p2p-send", name, prefix, "--channel", channel, limit=limit)
                )
                sender.read(START_TIMEOUT)
                pairs[name] = (sender, receiver)
            except Exception as exc:
                record_error(exc, list(rows.values()), name, say)
        for _ in range(sizes.redis_p2p_passes):
            for count in rows:
                for name, (sender, receiver) in list(pairs.items()):
                    try:
                        before = read_cpu_seconds(sender.pid) + read_cpu_seconds(receiver.pid)
                        outcome = sender.ask(
                            {"tasks": count, "seconds": sizes.redis_p2p_seconds},
                            sizes.redis_p2p_seconds + limit,
                        )
                        outcome["cpu_s"] = (
                            read_cpu_seconds(sender.pid) + read_cpu_seconds(receiver.pid) - before
                        )
                        found.setdefault((name, count), []).append(outcome)
                    except Exception as exc:
                        record_error(exc, list(rows.values()), name, say)
                        del pairs[name]
    for (name, count), outcomes in found.items():
        if name in rows[count].errors:
            continue
        rates = [o["rate"] for o in outcomes]
        rows[count].values[name] = max(rates)
        received = sum(o["received"] for o in outcomes)
        lost = sum(o["sent"] - o["received"] for o in outcomes)
        cpu = sum(o["cpu_s"] for o in outcomes) / max(received, 1)
        extra = f"; {lost} LOST" if lost else ""
        say(
            f"  {name:<13} {count:>3} task(s): best {max(rates):>9,.0f}, median "
            f"{statistics.median(rates):>9,.0f} messages/s (client CPU {cpu * 1e6:.1f} µs/msg"
            f"{extra})"
        )


def run_rabbitmq_group(contenders: Sequence[str], sizes: Sizes, results: Results, say: Say) -> None:
    say(
        f"\n== RabbitMQ group_send to {'/'.join(map(str, sizes.group_sizes))} members in "
        "another process; receivers drain; each round waits for all =="
    )
    chosen = contenders_of(contenders, results, say)
    if not chosen:
        return
    try:
        _group_sizes(chosen, sizes, results, say)
    finally:
        delete_leftovers(
            [f"{RUN}-group{members}-{name}" for members in sizes.group_sizes for name in chosen]
        )


def _group_sizes(chosen: list[str], sizes: Sizes, results: Results, say: Say) -> None:
    limit = sizes.client_time_limit
    for members in sizes.group_sizes:
        call = results.row(
            f"rabbitmq_group_send_{members}",
            f"RabbitMQ group_send to {members}: call",
            "ms",
            Kind.SECONDS,
        )
        whole = results.row(
            f"rabbitmq_group_round_{members}",
            f"RabbitMQ group_send to {members}: all got it (+ack)",
            "ms",
            Kind.SECONDS,
        )
        for name in chosen:
            prefix = f"{RUN}-group{members}-{name}"
            try:
                with (
                    worker(
                        "group-receive", name, prefix, "--members", str(members), limit=limit
                    ) as receiver,
                ):
                    receiver.read(START_TIMEOUT)
                    with worker("group-send", name, prefix, "--receivers", "1", limit=limit) as s:
                        s.read(START_TIMEOUT)
                        found = s.ask(
                            {
                                "rounds": sizes.redis_group_repeats,
                                "budget": sizes.redis_group_budget,
                            },
                            limit,
                        )
            except Exception as exc:
                record_error(exc, [call, whole], name, say)
                continue
            call.values[name] = statistics.median(found["calls"])
            whole.values[name] = statistics.median(found["rounds"])
            say(
                f"  {name:<13} group_send to {members:>5}: call {call.values[name] * 1e3:8.3f} ms, "
                f"all got it (+ack) {whole.values[name] * 1e3:8.3f} ms "
                f"(median of {len(found['calls'])})"
            )


__all__ = ["run_rabbitmq_group", "run_rabbitmq_p2p"]
