"""Figures 5-7: the Redis layers side by side on one Redis (127.0.0.1:6379).

The contenders are channelworks' ``RedisChannelLayer`` (column ``channelworks``), channels_redis'
core ``RedisChannelLayer`` (column ``channels``) and its ``RedisPubSubChannelLayer`` (column
``channels_pubsub``); ``--frameworks channels`` selects both channels_redis layers. Each run
uses key prefixes of its own (``cwbench-<random>-<figure>-<contender>``) and deletes every key
under them when the figure ends, however it ends.

- ``redis_p2p``: send+receive between two OS processes (``benchmarks.redis_bench``), in two
  sender modes: one task awaiting each send, and ``redis_p2p_tasks`` tasks doing so at once.
  Passes take turns across contenders and modes; the best pass counts. The target compares
  each contender's better mode.
- ``redis_group``: ``group_send`` to ``redis_group_members`` channels made by the layer in
  ``redis_group_processes`` receiving processes and drained there; each round waits until
  every member has the message, so every round starts drained. Rounds take turns across
  contenders in chunks. The figure is the median call time.
- ``redis_fanout``: the chat room of figure 2 through uvicorn, with each framework's Redis
  layer instead of its in-memory one, against the same raw in-process broadcast app.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import select
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any

from benchmarks.apps.redis_settings import PREFIX_VARIABLE, REDIS_HOST, REDIS_PORT
from benchmarks.figures.common import (
    APPS,
    Outcome,
    Say,
    interleaved,
    record_error,
    record_throughput,
    throughput_rows,
)
from benchmarks.figures.fanout import fanout_pass
from benchmarks.procstat import read_cpu_seconds
from benchmarks.results import Kind, Results, Row
from benchmarks.server import Server, running_server
from benchmarks.sizes import Sizes

#: the channels_redis layers, measured when ``channels`` is among the contenders
CHANNELS_REDIS = ("channels", "channels_pubsub")
REDIS_APPS = {
    "raw": APPS["raw"],
    "channelworks": "benchmarks.apps.channelworks_redis_app:application",
    "channels": "benchmarks.apps.channels_redis_app:application",
    "channels_pubsub": "benchmarks.apps.channels_pubsub_app:application",
}
LEGEND = (
    "NOTE: in the Redis rows, channels = Django Channels' channels_redis RedisChannelLayer "
    "(core) and channels_pubsub = its RedisPubSubChannelLayer; channelworks = "
    "channelworks.layers.redis.RedisChannelLayer. Every layer has its default options, except "
    "a 1000-connection redis-py pool for channels_redis core in the fan-out app (see "
    "benchmarks/apps/channels_redis_app.py)."
)
#: one random part per benchmark run: every key prefix of the run starts with it
RUN = f"cwbench-{secrets.token_hex(4)}"
#: seconds a worker may take to start (imports, connecting, making its channels)
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0


def channels_redis_installed() -> bool:
    return importlib.util.find_spec("channels_redis") is not None


def redis_server() -> tuple[str, bool]:
    """The Redis server's version and True, or why the Redis figures cannot run and False."""
    if importlib.util.find_spec("redis") is None:
        return "the redis package is not installed", False
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_timeout=2)
    try:
        version = str(client.info("server")["redis_version"])
    except redis.RedisError as exc:
        return f"Redis at {REDIS_HOST}:{REDIS_PORT} does not answer ({exc})", False
    finally:
        client.close()
    return version, True


def note_once(results: Results, say: Say, note: str) -> None:
    if note not in results.notes:
        say(note)
        results.notes.append(note)


def redis_contenders(
    contenders: Sequence[str], results: Results, say: Say, *, raw: bool = False
) -> list[str]:
    """Who runs a Redis figure (``channels`` stands for both channels_redis layers); nobody if
    Redis is not there (the figure is skipped with a note)."""
    found, up = redis_server()
    if not up:
        note_once(results, say, f"NOTE: the Redis figures are skipped: {found}")
        return []
    say(f"  Redis {found} at {REDIS_HOST}:{REDIS_PORT}; keys under {RUN}-*, deleted afterwards")
    chosen = [c for c in contenders if c == "channelworks" or (raw and c == "raw")]
    if "channels" in contenders:
        if channels_redis_installed():
            chosen += CHANNELS_REDIS
            note_once(results, say, LEGEND)
        else:
            note_once(
                results,
                say,
                "NOTE: channels_redis is not installed, so its Redis lines are skipped; it is "
                "in the 'bench' dependency group: uv run --group bench python -m benchmarks",
            )
    return chosen


def delete_prefix(prefix: str) -> int:
    """Delete every key that starts with ``prefix``; returns how many there were."""
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_timeout=10)
    deleted = 0
    try:
        doomed: list[Any] = []
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            doomed.append(key)
            if len(doomed) >= 1000:
                deleted += int(client.unlink(*doomed))
                doomed = []
        if doomed:
            deleted += int(client.unlink(*doomed))
    finally:
        client.close()
    return deleted


@contextlib.contextmanager
def prefix_for(figure: str) -> Iterator[str]:
    """A key prefix for ``figure`` in this run; its keys are deleted when the block ends."""
    prefix = f"{RUN}-{figure}"
    try:
        yield prefix
    finally:
        delete_prefix(prefix)


def redis_cpu_seconds() -> float:
    """User plus system CPU seconds the Redis server has used (``INFO cpu``)."""
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_timeout=5)
    try:
        info: dict[str, Any] = client.info("cpu")
    finally:
        client.close()
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


# -- the worker processes -----------------------------------------------------------------------


class WorkerFailed(RuntimeError):
    """A worker process exited, timed out or answered something unexpected."""


class Worker:
    """A ``benchmarks.redis_bench`` process: JSON commands on stdin, JSON lines on stdout."""

    def __init__(
        self, role: str, layer: str, prefix: str, *options: str, limit: float, log: IO[str]
    ) -> None:
        self.role = role
        self.log = log
        command = [sys.executable, "-m", "benchmarks.redis_bench", role, "--layer", layer]
        command += ["--prefix", prefix, "--ack-key", f"{prefix}:bench-ack", *options]
        command += ["--time-limit", str(limit)]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, bufsize=0
        )
        self._pending = b""

    @property
    def pid(self) -> int:
        return self.process.pid

    def read(self, timeout: float) -> dict[str, Any]:
        """The next JSON line the worker prints, within ``timeout`` seconds."""
        stdout = self.process.stdout
        assert stdout is not None
        deadline = time.monotonic() + timeout
        while b"\n" not in self._pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise WorkerFailed(f"{self.role} did not answer in {timeout:.0f} s{self._tail()}")
            ready, _, _ = select.select([stdout], [], [], left)
            if ready:
                chunk = os.read(stdout.fileno(), 65536)
                if not chunk:
                    self.process.wait(STOP_TIMEOUT)
                    raise WorkerFailed(
                        f"{self.role} exited with {self.process.returncode}{self._tail()}"
                    )
                self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def ask(self, command: dict[str, Any], timeout: float) -> dict[str, Any]:
        stdin = self.process.stdin
        assert stdin is not None
        try:
            stdin.write(json.dumps(command).encode() + b"\n")
        except OSError as exc:
            raise WorkerFailed(f"{self.role} is gone ({exc}){self._tail()}") from exc
        return self.read(timeout)

    def stop(self) -> None:
        """End of input, then wait; killed if it does not exit in time."""
        with contextlib.suppress(OSError):
            if self.process.stdin is not None:
                self.process.stdin.close()
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(STOP_TIMEOUT)
        finally:
            if self.process.stdout is not None:
                self.process.stdout.close()

    def _tail(self, limit: int = 2000) -> str:
        with contextlib.suppress(OSError, ValueError):
            self.log.seek(0)
            text = self.log.read().strip()
            if text:
                return ":\n" + text[-limit:]
        return ""


@contextlib.contextmanager
def worker(role: str, layer: str, prefix: str, *options: str, limit: float) -> Iterator[Worker]:
    with tempfile.TemporaryFile(mode="w+") as log:
        started = Worker(role, layer, prefix, *options, limit=limit, log=log)
        try:
            yield started
        finally:
            started.stop()


# -- figure 5: point to point between two processes ---------------------------------------------


def p2p_rows(results: Results, tasks: int) -> dict[int, tuple[Row, Row]]:
    rows: dict[int, tuple[Row, Row]] = {}
    for count in (1, tasks):
        what = "1 sender task" if count == 1 else f"{count} sender tasks"
        rows[count] = (
            results.row(
                f"redis_p2p_{count}",
                f"Redis send+receive, 2 processes, {what}",
                "messages/s",
                Kind.RATE,
            ),
            results.row(
                f"redis_p2p_{count}_cpu",
                f"Redis send+receive, {what}: CPU",
                "µs/msg",
                Kind.SECONDS,
            ),
        )
    return rows


def run_redis_p2p(contenders: Sequence[str], sizes: Sizes, results: Results, say: Say) -> None:
    tasks = sizes.redis_p2p_tasks
    say(
        f"\n== Redis send+receive between two processes: {sizes.redis_p2p_seconds:g} s of "
        f"sending per pass, 1 or {tasks} sender tasks, passes interleaved =="
    )
    chosen = redis_contenders(contenders, results, say)
    if not chosen:
        return
    rows = p2p_rows(results, tasks)
    every_row = [row for pair in rows.values() for row in pair]
    say(
        "  rate = messages received / (first send to last receive); CPU (row: the sum) = "
        "sender + receiver process + Redis server (INFO cpu), per message"
    )
    limit = sizes.client_time_limit
    with prefix_for("p2p") as prefix, contextlib.ExitStack() as stack:
        senders: dict[str, tuple[Worker, Worker]] = {}
        for name in chosen:
            try:
                mine = f"{prefix}-{name}"
                receiver = stack.enter_context(worker("p2p-receive", name, mine, limit=limit))
                channel = receiver.read(START_TIMEOUT)["channel"]
                sender = stack.enter_context(
                    worker("p2p-send", name, mine, "--channel", channel, limit=limit)
                )
                sender.read(START_TIMEOUT)
                senders[name] = (sender, receiver)
            except Exception as exc:
                record_error(exc, every_row, name, say)
        found: dict[tuple[str, int], list[Outcome]] = {}
        failed: set[str] = set()
        for _ in range(sizes.redis_p2p_passes):
            for count in rows:
                for name, (sender, receiver) in senders.items():
                    if name in failed:
                        continue
                    try:
                        found.setdefault((name, count), []).append(
                            p2p_pass(sender, receiver, count, sizes.redis_p2p_seconds, limit)
                        )
                    except Exception as exc:
                        record_error(exc, every_row, name, say)
                        failed.add(name)
    for (name, count), outcomes in found.items():
        if name not in failed:
            record_p2p(rows[count], name, outcomes, say)


def p2p_pass(sender: Worker, receiver: Worker, tasks: int, seconds: float, limit: float) -> Outcome:
    before = read_cpu_seconds(sender.pid), read_cpu_seconds(receiver.pid), redis_cpu_seconds()
    outcome = sender.ask({"tasks": tasks, "seconds": seconds}, seconds + limit)
    outcome["sender_cpu_s"] = read_cpu_seconds(sender.pid) - before[0]
    outcome["receiver_cpu_s"] = read_cpu_seconds(receiver.pid) - before[1]
    outcome["redis_cpu_s"] = redis_cpu_seconds() - before[2]
    return outcome


def record_p2p(rows: tuple[Row, Row], name: str, outcomes: Sequence[Outcome], say: Say) -> None:
    rate_row, cpu_row = rows
    rates = [outcome["rate"] for outcome in outcomes]
    received = sum(outcome["received"] for outcome in outcomes)
    lost = sum(outcome["sent"] - outcome["received"] for outcome in outcomes)
    refused = sum(outcome["refused"] for outcome in outcomes)
    cpu = {
        part: sum(outcome[f"{part}_cpu_s"] for outcome in outcomes) / received
        for part in ("sender", "receiver", "redis")
    }
    rate_row.values[name] = max(rates)
    cpu_row.values[name] = sum(cpu.values())
    passes = ", ".join(f"{rate:,.0f}" for rate in rates)
    split = ", ".join(f"{part} {value * 1e6:.1f}" for part, value in cpu.items())
    extra = f"; {refused} ChannelFull retried" if refused else ""
    extra += f"; {lost} LOST" if lost else ""
    say(
        f"  {name:<15} {rate_row.title.split(', ')[-1]:<16} best {max(rates):>9,.0f}, median "
        f"{statistics.median(rates):>9,.0f} messages/s  (passes: {passes}; CPU µs/msg: "
        f"{split}{extra})"
    )


# -- figure 6: group_send to many members in other processes ------------------------------------


def run_redis_group(contenders: Sequence[str], sizes: Sizes, results: Results, say: Say) -> None:
    members, processes = sizes.redis_group_members, sizes.redis_group_processes
    say(
        f"\n== Redis group_send to {members} members in {processes} other process(es); "
        "receivers drain; rounds interleaved in chunks =="
    )
    chosen = redis_contenders(contenders, results, say)
    if not chosen:
        return
    call = results.row(
        f"redis_group_send_{members}", f"Redis group_send to {members}: call", "ms", Kind.SECONDS
    )
    whole = results.row(
        f"redis_group_round_{members}",
        f"Redis group_send to {members}: all got it (+ack)",
        "ms",
        Kind.SECONDS,
    )
    limit = sizes.client_time_limit
    shares = [members // processes + (i < members % processes) for i in range(processes)]
    calls: dict[str, list[float]] = {}
    rounds: dict[str, list[float]] = {}
    with prefix_for("group") as prefix, contextlib.ExitStack() as stack:
        senders: dict[str, Worker] = {}
        for name in chosen:
            try:
                mine = f"{prefix}-{name}"
                receivers = [
                    stack.enter_context(
                        worker("group-receive", name, mine, "--members", str(share), limit=limit)
                    )
                    for share in shares
                ]
                for receiver in receivers:
                    receiver.read(START_TIMEOUT)
                sender = stack.enter_context(
                    worker("group-send", name, mine, "--receivers", str(processes), limit=limit)
                )
                sender.read(START_TIMEOUT)
                senders[name] = sender
            except Exception as exc:
                record_error(exc, [call, whole], name, say)
        chunks = max(1, min(3, sizes.redis_group_repeats))
        per_chunk = -(-sizes.redis_group_repeats // chunks)
        budget = sizes.redis_group_budget / chunks
        for _ in range(chunks):
            for name, sender in list(senders.items()):
                try:
                    found = sender.ask({"rounds": per_chunk, "budget": budget}, limit)
                except Exception as exc:
                    record_error(exc, [call, whole], name, say)
                    del senders[name]
                    continue
                calls.setdefault(name, []).extend(found["calls"])
                rounds.setdefault(name, []).extend(found["rounds"])
    for name in chosen:
        if name in call.errors or name not in calls:
            continue
        call.values[name] = statistics.median(calls[name])
        whole.values[name] = statistics.median(rounds[name])
        say(
            f"  {name:<15} group_send to {members:>5}: call {call.values[name] * 1e3:8.3f} ms "
            f"(min {min(calls[name]) * 1e3:.3f}, max {max(calls[name]) * 1e3:.3f}), all got it "
            f"(+ack) {whole.values[name] * 1e3:8.3f} ms (median of {len(calls[name])})"
        )


# -- figure 7: chat-room fan-out through uvicorn with the Redis layers -------------------------


@contextlib.contextmanager
def redis_servers(
    contenders: Sequence[str], prefix: str, rows: Sequence[Row], say: Say
) -> Iterator[dict[str, Server]]:
    """One server per contender on its Redis app, all up until the block ends."""
    before = os.environ.get(PREFIX_VARIABLE)
    os.environ[PREFIX_VARIABLE] = prefix  # the apps read their key prefix from it
    try:
        with contextlib.ExitStack() as stack:
            servers: dict[str, Server] = {}
            for name in contenders:
                try:
                    servers[name] = stack.enter_context(running_server(REDIS_APPS[name]))
                except Exception as exc:
                    record_error(exc, rows, name, say)
            yield servers
    finally:
        if before is None:
            os.environ.pop(PREFIX_VARIABLE, None)
        else:
            os.environ[PREFIX_VARIABLE] = before


def run_redis_fanout(contenders: Sequence[str], sizes: Sizes, results: Results, say: Say) -> None:
    shape = (
        f"{sizes.fanout_clients} clients, {sizes.fanout_rounds} rounds x "
        f"{sizes.fanout_messages} messages per pass"
    )
    say(f"\n== Chat-room fan-out through uvicorn with the Redis layers: {shape}, interleaved ==")
    chosen = redis_contenders(contenders, results, say, raw=True)
    if not chosen:
        return
    say("  raw is figure 2's in-process broadcast app; the server CPU rows exclude Redis' own")
    rows = throughput_rows(results, "redis_fanout", "fan-out to one room, Redis", "deliveries/s")
    sync_rows = throughput_rows(
        results, "redis_fanout_sync", "fan-out, tutorial's sync room, Redis", "deliveries/s"
    )

    def measured(path: str) -> Callable[[str, Server], Outcome]:
        one = fanout_pass(path, sizes)

        def one_pass(contender: str, server: Server) -> Outcome:
            before = redis_cpu_seconds()
            outcome = one(contender, server)
            # includes the client's connects and warm-up round: an upper bound
            outcome["redis_cpu_s"] = redis_cpu_seconds() - before
            return outcome

        return one_pass

    with (
        prefix_for("fanout") as prefix,
        redis_servers(chosen, prefix, [*rows, *sync_rows], say) as servers,
    ):
        for path, chosen_rows in (("/room", rows), ("/room-sync", sync_rows)):
            if path == "/room-sync":
                say("  the tutorial's sync room (raw: its room again):")
            for name, outcomes in interleaved(
                servers, sizes.redis_fanout_passes, measured(path), chosen_rows, say
            ).items():
                record_throughput(chosen_rows, name, outcomes, say)
                if name != "raw":
                    used = sum(o["redis_cpu_s"] for o in outcomes)
                    redis = used / sum(o["operations"] for o in outcomes)
                    say(
                        f"  {name:<12} Redis CPU {redis * 1e6:.1f} µs/op"
                        " (connects, warm-up included)"
                    )


__all__ = [
    "CHANNELS_REDIS",
    "run_redis_fanout",
    "run_redis_group",
    "run_redis_p2p",
]
