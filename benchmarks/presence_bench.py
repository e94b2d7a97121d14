"""Presence on the Redis layer: 1,000 members joining one group over two processes.

``uv run --group bench python -m benchmarks.presence_bench [--sizes 200,1000]``

Against a ``redis-server`` of its own on a free port (so that nothing else counts in its
command statistics), for each size: two OS processes hold half of the members each. At an
agreed instant every member joins the group, tracks itself and reads ``presence(group)``
(one after the other in each process, as sockets connecting), then applies the
``presence.diff`` messages it gets, by ``phx_ref``. Reported (issue #14's targets beside):

- ``converged``: milliseconds from the last join (in either process) until every member of both
  holds the full, identical list (target: within 1 s);
- ``diffs``: messages each member received (a handful of windows, not one per join);
- ``commands/join``: Redis commands (``INFO commandstats``, commands run inside scripts
  included) from the first track until every member is full and half a second more, per
  join; flat or falling as the size grows is O(1) per join. The heaviest commands are
  listed. The members joined the group (``group_add``, one script each) before the start:
  counted apart, per member.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from redis import Redis

GROUP = "bench.room"


# -- one process's members -----------------------------------------------------------------


class Member:
    """One member: what it read at its join, then every diff applied by ``phx_ref`` (a client
    of Phoenix's ``syncDiff`` keeps ``{key: metas}``; the refs are what tells it apart)."""

    def __init__(self, layer: Any, channel: str) -> None:
        self.layer = layer
        self.channel = channel
        self.refs: dict[str, str] = {}  # phx_ref -> key
        self.diffs = 0

    async def join(self, key: str) -> None:
        await self.layer.presence_track(GROUP, self.channel, key, {"n": key})
        refs = self.refs
        for name, metas in (await self.layer.presence(GROUP)).items():
            for meta in metas:
                refs[meta["phx_ref"]] = name

    async def read(self) -> None:
        refs = self.refs
        while True:
            diff = await self.layer.receive(self.channel)
            self.diffs += 1
            for metas in diff["leaves"].values():
                for meta in metas:
                    refs.pop(meta["phx_ref"], None)
            for key, metas in diff["joins"].items():
                for meta in metas:
                    refs[meta["phx_ref"]] = key


async def members(url: str, prefix: str, index: int, count: int, total: int, start: float) -> None:
    from channelworks.layers.redis import RedisChannelLayer

    layer = RedisChannelLayer(hosts=[url], prefix=prefix)
    await layer.presence("warm-up")  # the tracker runs and has heard the other process
    crowd = [Member(layer, await layer.new_channel("member")) for _ in range(count)]
    for member in crowd:  # members of the group before the start: their joins track only
        await layer.group_add(GROUP, member.channel)
    readers = [asyncio.create_task(member.read()) for member in crowd]
    await asyncio.sleep(max(0.0, start - time.time()))
    for n, member in enumerate(crowd):  # one after the other, as sockets connecting
        await member.join(f"user-{index}-{n}")
        await asyncio.sleep(0)
    last_join = time.time()
    for _ in range(60_000):  # polled: a member has no event to wait on
        if all(len(member.refs) >= total for member in crowd):
            break
        await asyncio.sleep(0.002)
    full = time.time()
    await asyncio.sleep(0.5)  # anything late shows as a difference below
    listed = {meta["phx_ref"] for metas in (await layer.presence(GROUP)).values() for meta in metas}
    consistent = all(member.refs.keys() == listed for member in crowd) and len(listed) == total
    diffs = sorted(member.diffs for member in crowd)
    print(
        json.dumps(
            {
                "last_join": last_join,
                "full": full,
                "consistent": consistent,
                "diffs_median": diffs[len(diffs) // 2],
                "diffs_max": diffs[-1],
            }
        ),
        flush=True,
    )
    # neither closes (sending its leaves) before both looked and the commands were counted
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    for reader in readers:
        reader.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    await layer.close()


# -- the run ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    port = free_port()
    with tempfile.TemporaryDirectory() as directory:
        process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                directory,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            client = Redis(port=port)
            for _ in range(100):
                with contextlib.suppress(Exception):
                    if client.ping():
                        break
                time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            process.wait(timeout=10)


def command_calls(client: Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


def one_size(url: str, total: int) -> dict[str, Any]:
    client = Redis.from_url(url)
    prefix = f"presence-bench-{total}"
    before = command_calls(client)
    start = time.time() + 4.0
    halves = [total // 2, total - total // 2]
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.presence_bench",
                "--worker",
                url,
                prefix,
                str(index),
                str(count),
                str(total),
                repr(start),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for index, count in enumerate(halves)
    ]
    time.sleep(max(0.0, start - 0.3 - time.time()))  # group_adds done, tracks not begun
    middle = command_calls(client)
    results = []
    for worker in workers:
        assert worker.stdout is not None
        results.append(json.loads(worker.stdout.readline()))
    after = command_calls(client)
    for worker in workers:
        worker.communicate("close\n", timeout=60)
    setup = sum(middle.values()) - sum(before.values()) - 1  # our own INFO aside
    delta = {name: after.get(name, 0) - middle.get(name, 0) for name in after}
    delta = {name: calls for name, calls in delta.items() if calls > 0}
    delta.pop("info", None)
    calls = sum(delta.values())
    heaviest = sorted(delta.items(), key=lambda item: -item[1])[:6]
    return {
        "members": total,
        "converged_s": max(r["full"] for r in results) - max(r["last_join"] for r in results),
        "joins_s": max(r["last_join"] for r in results) - start,
        "consistent": all(r["consistent"] for r in results),
        "diffs_median": max(r["diffs_median"] for r in results),
        "diffs_max": max(r["diffs_max"] for r in results),
        "setup_per_member": setup / total,
        "commands": calls,
        "commands_per_join": calls / total,
        "heaviest": heaviest,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200,1000", help="members per run, comma-separated")
    parser.add_argument("--worker", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        url, prefix, index, count, total, start = args.worker
        asyncio.run(members(url, prefix, int(index), int(count), int(total), float(start)))
        return
    with redis_server() as url:
        for size in (int(s) for s in args.sizes.split(",")):
            result = one_size(url, size)
            print(
                f"{result['members']:>5} members over 2 processes: joins took "
                f"{result['joins_s']:.2f} s; every member full and consistent "
                f"({result['consistent']}) {result['converged_s'] * 1000:.0f} ms after the last "
                f"join (target < 1000 ms); diffs per member median {result['diffs_median']}, "
                f"max {result['diffs_max']}; Redis commands from the first track until all full "
                f"{result['commands']} = {result['commands_per_join']:.2f} per join (heaviest "
                f"{result['heaviest']}); before it, group_add and start "
                f"{result['setup_per_member']:.2f} per member",
                flush=True,
            )


if __name__ == "__main__":
    main()
