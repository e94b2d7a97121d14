"""A layer over a three-node Redis Cluster: keys of one process or group share a slot."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any

import pytest

from channelworks.layers.redis import RedisChannelLayer
from tests.layers.redis.servers import cli, cluster_setup

pytestmark = pytest.mark.services


async def receive(layer: RedisChannelLayer, channel: str, timeout: float = 5) -> dict[str, Any]:
    return await asyncio.wait_for(layer.receive(channel), timeout)


async def test_a_cluster_carries_every_kind_of_message(tmp_path: Path) -> None:
    with cluster_setup(tmp_path) as ports:
        hosts = [("127.0.0.1", port) for port in ports[:2]]  # startup nodes; the rest is found
        prefix = f"c{secrets.token_hex(3)}"
        layers = [RedisChannelLayer(hosts=hosts, cluster=True, prefix=prefix) for _ in range(3)]
        first, second, third = layers
        try:
            mine = await first.new_channel()
            theirs = await second.new_channel()
            for channel in (mine, theirs):
                await first.group_add("room", channel)
            await third.send(mine, {"type": "direct"})
            # sends made at once go as one batch, whose arguments were packed as they came
            batches = third.stats.send_batches
            await asyncio.gather(
                *(third.send(theirs, {"type": "batched", "n": n}) for n in range(5))
            )
            assert third.stats.send_batches - batches < 5
            await third.group_send("room", {"type": "group"})
            for n in range(20):
                await third.send("work", {"type": "job", "n": n})
            assert (await receive(first, mine))["type"] == "direct"
            assert (await receive(first, mine))["type"] == "group"
            batched = [(await receive(second, theirs))["n"] for _ in range(5)]
            assert sorted(batched) == list(range(5))  # concurrent senders: no order among them
            assert (await receive(second, theirs))["type"] == "group"
            jobs = [(await receive(layer, "work"))["n"] for layer in (first, second) * 10]
            assert sorted(jobs) == list(range(20))
            # the keys one script touches share a slot: a process's, a group's
            keys = first.keys
            for same_slot in (
                [
                    keys.inbox(first.pid),
                    keys.count(first.pid),
                    keys.alive(first.pid),
                ],
                [keys.group("room"), keys.presence("room"), keys.history("room")],
            ):
                assert len({cli(ports[0], "cluster", "keyslot", key) for key in same_slot}) == 1
            await first.flush()
            left = [k for p in ports for k in cli(p, "keys", f"{prefix}:*").split()]
            assert left
            # flush keeps the alive keys; the reader's own inbox (holding the flush marker until
            # its next round trip acknowledges it) and counts may be back already
            kept = tuple(f"{prefix}:{kind}:" for kind in ("alive", "inbox", "count"))
            assert all(key.startswith(kept) for key in left)
        finally:
            for layer in layers:
                await layer.close()


async def test_receives_alternating_between_nodes_never_meet_moved(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with cluster_setup(tmp_path) as ports:
        hosts = [("127.0.0.1", ports[0])]
        layer = RedisChannelLayer(hosts=hosts, cluster=True, prefix=f"c{secrets.token_hex(3)}")
        try:
            # two normal channels whose keys live on different nodes
            names: dict[str, str] = {}
            for n in range(200):
                name = f"work{n}"
                slot = int(cli(ports[0], "cluster", "keyslot", layer.keys.channel(name)))
                node = next(
                    line.split()[1]
                    for line in cli(ports[0], "cluster", "nodes").splitlines()
                    if any(
                        int(r.split("-")[0]) <= slot <= int(r.split("-")[-1])
                        for r in line.split()[8:]
                        if r[0].isdigit()
                    )
                )
                names.setdefault(node, name)
                if len(names) == 2:
                    break
            first, second = names.values()
            with caplog.at_level("WARNING", logger="channelworks.layers.redis"):
                for n in range(6):  # one receive at a time: the same idle popper each time
                    channel = (first, second)[n % 2]
                    await layer.send(channel, {"type": "job", "n": n})
                    assert (await receive(layer, channel))["n"] == n
            assert "waits for Redis" not in caplog.text  # no MOVED, no backoff
        finally:
            await layer.close()
