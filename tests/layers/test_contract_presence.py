"""The presence part of the layer contract (docs/channel-layer-spec.md "Presence"), run against
every backend: one process, several layers sharing a broker (each one process as far as the
others can tell), other OS processes (one killed with SIGKILL), and Redis restarted empty."""

from __future__ import annotations

import asyncio
import functools
import itertools
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from channelworks.exceptions import InvalidChannelName, InvalidPresence
from channelworks.layers import BaseChannelLayer
from channelworks.layers.presence import genuine_diff
from channelworks.layers.tokens import layer_token
from tests.layers.backends import RABBITMQ_URL, REDIS_URL
from tests.layers.conftest import MakeLayer

State = dict[str, dict[str, dict[str, Any]]]  # key -> phx_ref -> meta, as a client keeps it

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def layer(make_layer: MakeLayer) -> BaseChannelLayer:
    return make_layer()


def shared(make_layer: MakeLayer, count: int, **options: Any) -> list[BaseChannelLayer]:
    """``count`` layers on one broker and prefix (so, as many processes); skips in memory."""
    first = make_layer(**options)
    if not getattr(first, "presence_distributed", False):
        pytest.skip("one process only: the in-memory layer has no other process to tell")
    prefix = first.prefix  # type: ignore[attr-defined]
    return [first, *(make_layer(prefix=prefix, **options) for _ in range(count - 1))]


def apply(state: State, diff: dict[str, Any]) -> None:
    """A diff applied as a client applies it (Phoenix's syncDiff): by ``phx_ref``."""
    for key, metas in diff["leaves"].items():
        for meta in metas:
            state.get(key, {}).pop(meta["phx_ref"], None)
        if key in state and not state[key]:
            del state[key]
    for key, metas in diff["joins"].items():
        for meta in metas:
            state.setdefault(key, {})[meta["phx_ref"]] = meta


def of(presence: dict[str, list[dict[str, Any]]]) -> State:
    return {key: {meta["phx_ref"]: meta for meta in metas} for key, metas in presence.items()}


def keys(state: State) -> dict[str, int]:
    return {key: len(refs) for key, refs in state.items()}


async def next_diff(layer: BaseChannelLayer, channel: str, timeout: float = 5) -> dict[str, Any]:
    while True:
        message = await asyncio.wait_for(layer.receive(channel), timeout)
        if message["type"] == "presence.diff":
            return message


async def watch_until(
    layer: BaseChannelLayer,
    channel: str,
    state: State,
    done: Callable[[State], bool],
    timeout: float = 10,
) -> list[dict[str, Any]]:
    """Apply the diffs ``channel`` gets to ``state`` until ``done(state)``; -> the diffs."""
    diffs = []
    async with asyncio.timeout(timeout):
        while not done(state):
            diff = await next_diff(layer, channel, timeout)
            apply(state, diff)
            diffs.append(diff)
    return diffs


async def until(
    check: Callable[[], Awaitable[bool]], timeout: float = 10, every: float = 0.02
) -> None:
    """Wait until ``check()`` is true (polled), or fail with ``TimeoutError``."""
    async with asyncio.timeout(timeout):
        for _ in itertools.count():
            if await check():
                return
            await asyncio.sleep(every)


async def listed(layer: BaseChannelLayer, group: str, state: State) -> bool:
    return of(await layer.presence(group)) == state


async def member(layer: BaseChannelLayer, group: str) -> str:
    channel = await layer.new_channel("member")
    await layer.group_add(group, channel)
    return channel


# -- one layer ---------------------------------------------------------------------------------


async def test_track_lists_the_presence_with_its_ref_and_join_time(
    layer: BaseChannelLayer,
) -> None:
    channel = await member(layer, "room")
    meta = await layer.presence_track("room", channel, "alice", {"status": "away"})
    assert meta["status"] == "away"
    assert isinstance(meta["phx_ref"], str)
    assert meta["phx_ref"]
    assert isinstance(meta["joined_at"], float)
    assert await layer.presence("room") == {"alice": [meta]}
    assert await layer.presence("elsewhere") == {}
    diff = await next_diff(layer, channel)
    assert genuine_diff(layer, diff)  # it carries the layer's token
    assert diff == {
        "type": "presence.diff",
        "group": "room",
        "joins": {"alice": [meta]},
        "leaves": {},
        "token": layer_token(layer),
    }


async def test_one_key_tracked_by_several_channels_has_one_meta_each(
    layer: BaseChannelLayer,
) -> None:
    tabs = [await member(layer, "room") for _ in range(3)]
    metas = [
        await layer.presence_track("room", tab, "alice", {"tab": n}) for n, tab in enumerate(tabs)
    ]
    assert len({meta["phx_ref"] for meta in metas}) == 3
    listed = (await layer.presence("room"))["alice"]
    assert sorted(m["tab"] for m in listed) == [0, 1, 2]
    await layer.presence_untrack("room", tabs[1])
    assert sorted(m["tab"] for m in (await layer.presence("room"))["alice"]) == [0, 2]


async def test_changes_in_one_window_are_one_diff_per_group(make_layer: MakeLayer) -> None:
    layer = make_layer(presence_interval=0.5)
    watcher = await member(layer, "room")
    await layer.presence("room")  # started: what follows does no I/O before the window ends
    channels = [await layer.new_channel() for _ in range(50)]
    for n, channel in enumerate(channels):
        await layer.presence_track("room", channel, f"user-{n}", {})
    diff = await next_diff(layer, watcher)
    assert sorted(diff["joins"]) == sorted(f"user-{n}" for n in range(50))
    assert diff["leaves"] == {}


async def test_a_join_and_leave_in_one_window_cancel_out(make_layer: MakeLayer) -> None:
    layer = make_layer(presence_interval=0.3)
    watcher = await member(layer, "room")
    await layer.presence("room")
    brief, stays = await layer.new_channel(), await layer.new_channel()
    await layer.presence_track("room", brief, "brief", {})
    await layer.presence_untrack("room", brief)
    await layer.presence_track("room", stays, "stays", {})
    diff = await next_diff(layer, watcher)
    assert list(diff["joins"]) == ["stays"]
    assert diff["leaves"] == {}
    assert list(await layer.presence("room")) == ["stays"]


async def test_update_replaces_the_meta_with_a_new_ref(layer: BaseChannelLayer) -> None:
    watcher = await member(layer, "room")
    channel = await layer.new_channel()
    first = await layer.presence_track("room", channel, "alice", {"status": "here"})
    await next_diff(layer, watcher)
    second = await layer.presence_update("room", channel, "alice", {"status": "away"})
    assert second["phx_ref"] != first["phx_ref"]
    assert second["phx_ref_prev"] == first["phx_ref"]
    assert second["joined_at"] == first["joined_at"]
    assert await layer.presence("room") == {"alice": [second]}
    diff = await next_diff(layer, watcher)
    assert diff["leaves"] == {"alice": [first]}
    assert diff["joins"] == {"alice": [second]}


async def test_untrack_sends_the_leave_and_untrack_all_leaves_every_group(
    layer: BaseChannelLayer,
) -> None:
    watcher = await member(layer, "a")
    await layer.group_add("b", watcher)
    channel = await layer.new_channel()
    state: State = {}
    await layer.presence_track("a", channel, "alice", {})
    await layer.presence_track("b", channel, "alice", {})
    await watch_until(layer, watcher, state, lambda s: len(s.get("alice", {})) == 2)
    await layer.presence_untrack("a", channel)
    await layer.presence_untrack("a", channel)  # not tracked there any more: ignored
    await watch_until(layer, watcher, state, lambda s: len(s.get("alice", {})) == 1)
    assert await layer.presence("a") == {}
    await layer.presence_untrack_all(channel)
    await watch_until(layer, watcher, state, lambda s: s == {})
    assert await layer.presence("b") == {}


async def test_bad_presence_calls_are_refused_with_the_reason(layer: BaseChannelLayer) -> None:
    channel = await layer.new_channel()
    for key in ("", 42, None, "k" * 257):
        with pytest.raises(InvalidPresence, match="key"):
            await layer.presence_track("room", channel, key, {})  # type: ignore[arg-type]
    metas: list[Any] = [[], {"phx_ref": "mine"}, {"joined_at": 1}, {1: "x"}, {"f": object()}]
    for meta in metas:
        with pytest.raises(InvalidPresence, match="meta"):
            await layer.presence_track("room", channel, "alice", meta)
    with pytest.raises(InvalidPresence, match="bytes"):
        await layer.presence_track("room", channel, "alice", {"blob": "x" * 10_000})
    with pytest.raises(InvalidChannelName):
        await layer.presence_track("bad group!", channel, "alice", {})
    with pytest.raises(InvalidPresence, match="not tracked"):
        await layer.presence_update("room", channel, "alice", {})
    await layer.presence_track("room", channel, "alice", {"t": (1, 2)})
    with pytest.raises(InvalidPresence, match="already tracked"):
        await layer.presence_track("room", channel, "alice", {})
    assert [m["t"] for m in (await layer.presence("room"))["alice"]] == [[1, 2]]  # msgpack's copy


async def test_close_sends_the_leaves_at_once(make_layer: MakeLayer) -> None:
    layer = make_layer()
    if getattr(layer, "presence_distributed", False):
        pytest.skip("a closed cross-process layer ends its receives: see the test with two")
    watcher = await member(layer, "room")
    channel = await layer.new_channel()
    await layer.presence_track("room", channel, "alice", {})
    await next_diff(layer, watcher)
    waiting = asyncio.ensure_future(next_diff(layer, watcher))
    await asyncio.sleep(0.05)  # waiting (the in-memory layer's close drops what is queued)
    await layer.close()
    diff = await waiting
    assert list(diff["leaves"]) == ["alice"]


async def test_diffs_stay_out_of_group_history(make_layer: MakeLayer) -> None:
    try:
        layer = make_layer(history={"room*": {"size": 10}})
    except TypeError:
        pytest.skip("no history option on this layer")
    watcher = await member(layer, "room")
    await layer.presence_track("room", await layer.new_channel(), "alice", {})
    diff = await next_diff(layer, watcher)
    assert "__position" not in diff
    assert (await layer.history("room")).messages == []


async def test_a_layer_without_presence_calls_runs_nothing_for_it(layer: BaseChannelLayer) -> None:
    channel = await member(layer, "room")
    await layer.group_send("room", {"type": "chat.message"})
    assert (await asyncio.wait_for(layer.receive(channel), 5))["type"] == "chat.message"
    assert getattr(layer, "_presences", None) is None
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("presence")]


# -- several layers on one broker (several processes, as far as they can tell) ---------------


async def test_presences_of_other_processes_are_listed_and_their_diffs_arrive(
    make_layer: MakeLayer,
) -> None:
    a, b = shared(make_layer, 2)
    watcher = await member(a, "room")
    state = of(await a.presence("room"))
    theirs = await b.presence_track("room", await b.new_channel(), "bob", {"via": "b"})
    ours = await a.presence_track("room", await a.new_channel(), "alice", {"via": "a"})
    await watch_until(a, watcher, state, lambda s: keys(s) == {"alice": 1, "bob": 1})
    assert state == {"alice": {ours["phx_ref"]: ours}, "bob": {theirs["phx_ref"]: theirs}}
    for layer in (a, b):
        await until(functools.partial(listed, layer, "room", state))
    await b.presence_untrack_all(next(iter(b.presences.channels)))  # type: ignore[attr-defined]
    await watch_until(a, watcher, state, lambda s: "bob" not in s)
    assert list(await a.presence("room")) == ["alice"]


async def test_a_process_that_starts_later_gets_the_state(make_layer: MakeLayer) -> None:
    a, b = shared(make_layer, 2)
    for n in range(250):  # more than one part of a state message
        await a.presence_track("room", await a.new_channel(), f"u{n}", {"n": n})
    expected = of(await a.presence("room"))
    assert len(expected) == 250
    await until(functools.partial(listed, b, "room", expected))


async def test_a_clean_close_sends_leaves_before_the_timeout(make_layer: MakeLayer) -> None:
    a, b = shared(make_layer, 2, presence_timeout=60)
    watcher = await member(a, "room")
    state = of(await a.presence("room"))
    await b.presence_track("room", await b.new_channel(), "bob", {})
    await watch_until(a, watcher, state, lambda s: "bob" in s)
    await b.close()
    await watch_until(a, watcher, state, lambda s: "bob" not in s, timeout=10)
    assert await a.presence("room") == {}


# -- other OS processes ------------------------------------------------------------------------


def peer(
    backend: str, prefix: str, group: str, count: int, timeout: float
) -> subprocess.Popen[str]:
    url = REDIS_URL if backend.startswith("redis") else RABBITMQ_URL
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.layers.presence_peer",
            backend.split("-")[0],
            url,
            prefix,
            group,
            str(count),
            str(timeout),
        ],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.strip() == "ready", line
    return process


@pytest.mark.parametrize("ending", ["killed", "closed"])
async def test_another_os_process_presences_and_their_end(
    make_layer: MakeLayer, ending: str
) -> None:
    backend = make_layer.backend  # type: ignore[attr-defined]
    if backend == "redis-sharded":
        pytest.skip("the OS process peer uses one Redis database")
    # killed: gone after the (short) timeout; closed: at once, long before the (long) one
    timeout = 1.5 if ending == "killed" else 60
    (a,) = shared(make_layer, 1, presence_timeout=timeout)
    group = f"room-{secrets.token_hex(3)}"
    watcher = await member(a, group)
    state = of(await a.presence(group))
    prefix = a.prefix  # type: ignore[attr-defined]
    process = await asyncio.get_running_loop().run_in_executor(
        None, peer, backend, prefix, group, 20, timeout
    )
    try:
        await watch_until(a, watcher, state, lambda s: len(s) == 20)
        assert of(await a.presence(group)) == state
        if ending == "killed":
            process.send_signal(signal.SIGKILL)
        else:
            assert process.stdin is not None
            process.stdin.write("close\n")
            process.stdin.flush()
        diffs = await watch_until(a, watcher, state, lambda s: s == {}, timeout=10)
        assert sum(len(d["leaves"]) for d in diffs) == 20  # each leave once
        assert await a.presence(group) == {}
    finally:
        process.kill()
        process.wait()
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                pipe.close()


async def test_redis_restarted_empty_keeps_presences_without_ghosts(tmp_path: Path) -> None:
    from channelworks.layers.redis import RedisChannelLayer
    from tests.layers.redis.servers import redis_server

    with redis_server(tmp_path) as server:
        options: dict[str, Any] = {
            "hosts": [server.url],
            "prefix": "presence",
            "presence_timeout": 3,
        }
        a, b = RedisChannelLayer(**options), RedisChannelLayer(**options)
        try:
            watcher = await member(a, "room")
            state = of(await a.presence("room"))
            gone = await b.new_channel()
            await b.presence_track("room", gone, "leaving", {})
            await b.presence_track("room", await b.new_channel(), "staying", {})
            await a.presence_track("room", await a.new_channel(), "local", {})
            await watch_until(a, watcher, state, lambda s: len(s) == 3)
            server.stop()
            server.start()  # empty: no memberships, no alive keys
            await b.presence_untrack("room", gone)
            await b.presence_track("room", await b.new_channel(), "new", {})
            await watch_until(
                a,
                watcher,
                state,
                lambda s: keys(s) == {"local": 1, "staying": 1, "new": 1},
                timeout=20,
            )
            for layer in (a, b):
                await until(functools.partial(listed, layer, "room", state))
            # nothing else arrives later: no ghost comes back, no duplicate
            await asyncio.sleep(1)
            assert of(await a.presence("room")) == state
        finally:
            await a.close()
            await b.close()
