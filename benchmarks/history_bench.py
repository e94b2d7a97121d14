"""Group history on the Redis layer: what ``history=True`` costs, and how fast a resume is.

``uv run --group bench python -m benchmarks.history_bench [--members 1000] [--rounds 40]``
``uv run --group bench python -m benchmarks.history_bench --backend rabbitmq [--members 100]``
(the RabbitMQ layer: its members held by a second layer in this process, on its own
connection; a stream queue per log, docs/rabbitmq.md "History")

Two figures, against the Redis at ``REDIS_URL`` (issue #14's targets beside them):

- ``group_send`` to ``--members`` members held by another process (the ``group-receive``
  worker of ``benchmarks.redis_bench``, which acknowledges each round through Redis once all
  its members have the message): rounds alternate plain and ``history=True`` so that both
  see the same machine; the call time (what the sender waits) and the round time (until every
  member has it) are reported as medians and as a ratio (target: history <= 1.3x plain);
- a resume: ``history(group, since=position, limit=100)`` with 100 messages missed,
  median over ``--resumes`` calls (target: within 5 ms).

One process sends; the timings include nothing but the calls named.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import time

from redis.asyncio import Redis

from benchmarks.apps.redis_settings import REDIS_URL
from benchmarks.figures.redis import worker
from benchmarks.redis_bench import ACK_TIMEOUT, GROUP
from channelworks.layers.history import StreamPosition
from channelworks.layers.redis import RedisChannelLayer

MISSED = 100


async def one_round(
    layer: RedisChannelLayer, ack: Redis, ack_key: str, number: int, history: bool
) -> tuple[float, float]:
    started = time.perf_counter()
    await layer.group_send(GROUP, {"type": "bench.message", "n": number}, history=history)
    called = time.perf_counter()
    while True:
        reply = await ack.blpop([ack_key], timeout=ACK_TIMEOUT)
        if reply is None:
            raise TimeoutError(f"round {number}: the members did not all get the message")
        if int(reply[1]) == number:
            return called - started, time.perf_counter() - started


async def measure(args: argparse.Namespace, prefix: str) -> None:
    layer = RedisChannelLayer(hosts=[REDIS_URL], prefix=prefix)
    ack = Redis.from_url(REDIS_URL)
    ack_key = f"{prefix}:bench-ack"
    times: dict[bool, tuple[list[float], list[float]]] = {False: ([], []), True: ([], [])}
    try:
        for number in range(2):  # warm-up: scripts loaded, connections made, not recorded
            await one_round(layer, ack, ack_key, number, history=bool(number))
        for number in range(2, 2 + 2 * args.rounds):
            history = number % 2 == 1
            call, whole = await one_round(layer, ack, ack_key, number, history)
            times[history][0].append(call)
            times[history][1].append(whole)
        plain_call, plain_round = (statistics.median(t) * 1000 for t in times[False])
        hist_call, hist_round = (statistics.median(t) * 1000 for t in times[True])
        print(f"group_send to {args.members} members in another process, median of {args.rounds}:")
        print(f"  plain          call {plain_call:7.3f} ms, all received {plain_round:7.3f} ms")
        print(f"  history=True   call {hist_call:7.3f} ms, all received {hist_round:7.3f} ms")
        print(
            f"  ratio          call {hist_call / plain_call:6.2f}x,  all received "
            f"{hist_round / plain_round:6.2f}x   (target: <= 1.3x)"
        )

        resume_group = f"{GROUP}-resume"
        before = await layer.group_send(resume_group, {"type": "bench.seed"}, history=True)
        assert before is not None
        for n in range(MISSED):
            await layer.group_send(resume_group, {"type": "bench.message", "n": n}, history=True)
        since = StreamPosition(before.offset, before.epoch)
        resumes = []
        for _ in range(args.resumes):
            started = time.perf_counter()
            result = await layer.history(resume_group, since=since, limit=MISSED)
            resumes.append(time.perf_counter() - started)
            if len(result.messages) != MISSED:
                raise AssertionError(f"a resume returned {len(result.messages)} messages")
        print(
            f"resume of {MISSED} missed messages (history(since=..., limit={MISSED})): "
            f"median {statistics.median(resumes) * 1000:.3f} ms, "
            f"max {max(resumes) * 1000:.3f} ms over {args.resumes}   (target: <= 5 ms)"
        )
    finally:
        await layer.flush()
        await layer.close()
        await ack.aclose()


async def measure_rabbitmq(args: argparse.Namespace, prefix: str) -> None:
    """The same two figures on the RabbitMQ layer; a round ends when every member has it."""
    from benchmarks.rabbitmq_bench import RABBITMQ_URL
    from channelworks.layers.rabbitmq import RabbitMQChannelLayer

    sender = RabbitMQChannelLayer(host=RABBITMQ_URL, prefix=prefix)
    holder = RabbitMQChannelLayer(host=RABBITMQ_URL, prefix=prefix)
    channels = [await holder.new_channel() for _ in range(args.members)]
    for channel in channels:
        await holder.group_add(GROUP, channel)
    times: dict[bool, tuple[list[float], list[float]]] = {False: ([], []), True: ([], [])}
    try:
        for number in range(2 + 2 * args.rounds):
            history = number % 2 == 1
            started = time.perf_counter()
            await sender.group_send(GROUP, {"type": "bench.message", "n": number}, history=history)
            called = time.perf_counter()
            await asyncio.gather(*(holder.receive(channel) for channel in channels))
            if number >= 2:  # the first two warm up: connections, declarations, the log
                times[history][0].append(called - started)
                times[history][1].append(time.perf_counter() - started)
        plain_call, plain_round = (statistics.median(t) * 1000 for t in times[False])
        hist_call, hist_round = (statistics.median(t) * 1000 for t in times[True])
        print(f"RabbitMQ: group_send to {args.members} members, median of {args.rounds}:")
        print(f"  plain          call {plain_call:7.3f} ms, all received {plain_round:7.3f} ms")
        print(f"  history=True   call {hist_call:7.3f} ms, all received {hist_round:7.3f} ms")
        print(
            f"  ratio          call {hist_call / plain_call:6.2f}x,  all received "
            f"{hist_round / plain_round:6.2f}x"
        )
        resume_group = f"{GROUP}-resume"
        before = await sender.group_send(resume_group, {"type": "bench.seed"}, history=True)
        assert before is not None
        for n in range(MISSED):
            await sender.group_send(resume_group, {"type": "bench.message", "n": n}, history=True)
        # The writing process has seen the records go by (kept in memory); the other one
        # opened the log after they were written: its first resume reads them from the
        # stream (and keeps them), the next ones are served from memory.
        for reader, where in ((sender, "writing process"), (holder, "another process")):
            resumes = []
            for _ in range(args.resumes):
                started = time.perf_counter()
                result = await reader.history(resume_group, since=before, limit=MISSED)
                resumes.append(time.perf_counter() - started)
                if len(result.messages) != MISSED:
                    raise AssertionError(f"a resume returned {len(result.messages)} messages")
            later = resumes[1:]
            print(
                f"RabbitMQ: resume of {MISSED} missed messages, {where}: first "
                f"{resumes[0] * 1000:.3f} ms, then median {statistics.median(later) * 1000:.3f}"
                f" ms, max {max(later) * 1000:.3f} ms over {len(later)}"
            )
    finally:
        for layer in (sender, holder):
            await layer.flush()
            await layer.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.history_bench")
    parser.add_argument("--backend", choices=["redis", "rabbitmq"], default="redis")
    parser.add_argument("--members", type=int, default=None, help="1000 (Redis), 100 (RabbitMQ)")
    parser.add_argument("--rounds", type=int, default=40, help="rounds of each kind")
    parser.add_argument("--resumes", type=int, default=50)
    args = parser.parse_args(argv)
    prefix = f"bench-history-{secrets.token_hex(4)}"
    if args.backend == "rabbitmq":
        args.members = args.members or 100
        asyncio.run(measure_rabbitmq(args, prefix))
        return
    args.members = args.members or 1000
    members = ("--members", str(args.members))
    with worker("group-receive", "channelworks", prefix, *members, limit=300) as receiver:
        ready = receiver.read(timeout=120)
        if not ready.get("ready"):
            raise RuntimeError(f"the receiving worker answered {ready!r}")
        asyncio.run(measure(args, prefix))


if __name__ == "__main__":
    main()
