"""The plain parts of the Redis layer, without a server: keys, hosts, inbox entries."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from channelworks.exceptions import InvalidChannelName
from channelworks.layers.codec import Codec
from channelworks.layers.memory import InMemoryChannelLayer
from channelworks.layers.redis import scripts
from channelworks.layers.redis.hosts import HostSpec, parse_hosts, pick_shard
from channelworks.layers.redis.keys import Keyspace, check_prefix, process_of
from channelworks.layers.redis.reader import InboxReader, OwnPushes
from channelworks.layers.redis.stats import RedisLayerStats
from channelworks.logs import AggregatedLog

# -- keys -------------------------------------------------------------------------------------


def test_keys_share_a_hash_tag_per_process_and_per_group() -> None:
    keys = Keyspace("asgi")
    assert keys.inbox("p1") == "asgi:inbox:{p1}"
    assert keys.count("p1") == "asgi:count:{p1}"
    assert keys.alive("p1") == "asgi:alive:{p1}"
    assert keys.group("room") == "asgi:group:{room}"
    assert keys.presence("room") == "asgi:presence:{room}"
    assert keys.history("room") == "asgi:history:{room}"
    assert keys.channel("work") == "asgi:channel:{work}"
    assert keys.pattern == "asgi:*"


@pytest.mark.parametrize("prefix", ["", "a b", "a*", "a{b}", "a?", 3])
def test_prefix_must_be_safe_in_keys_and_patterns(prefix: Any) -> None:
    with pytest.raises(ValueError, match="prefix"):
        check_prefix(prefix)


def test_trailing_colon_of_channels_redis_prefixes_is_dropped() -> None:
    assert Keyspace("asgi:").prefix == "asgi"


@pytest.mark.parametrize("prefix", ["asgi:tenant2", "a:b:", ":", "::"])
def test_a_prefix_cannot_nest_in_another(prefix: str) -> None:
    # flush() of "asgi" deletes "asgi:*": that would be every key of "asgi:tenant2" too
    with pytest.raises(ValueError, match="prefix"):
        check_prefix(prefix)


@pytest.mark.parametrize("channel", ["chat.!1", ".!1", "a.b.!x"])
def test_a_channel_without_a_process_id_is_refused(channel: str) -> None:
    with pytest.raises(InvalidChannelName):
        process_of(channel)


@pytest.mark.parametrize(
    ("channel", "pid"),
    [("specific.abc!1", "abc"), ("chat.room.abc!x", "abc"), ("abc!1", "abc")],
)
def test_process_of_a_channel(channel: str, pid: str) -> None:
    assert process_of(channel) == pid


# -- hosts ------------------------------------------------------------------------------------


def test_hosts_in_every_channels_redis_form() -> None:
    specs = parse_hosts(
        [
            "redis://:pw@10.0.0.1:6380/2",
            ("10.0.0.2", 6379),
            {"address": ("10.0.0.3", 6379), "db": 1, "password": "x"},
            {"address": "redis://10.0.0.4:6379"},
            {"host": "10.0.0.5", "port": 7000},
        ]
    )
    assert [s.identity for s in specs] == [
        "redis://10.0.0.1:6380/2",
        "redis://10.0.0.2:6379/0",
        "redis://10.0.0.3:6379/1",
        "redis://10.0.0.4:6379",
        "redis://10.0.0.5:7000/0",
    ]
    assert specs[2].options == {"host": "10.0.0.3", "port": 6379, "db": 1, "password": "x"}
    assert "pw" not in specs[0].identity


def test_default_host_and_single_url() -> None:
    assert parse_hosts(None) == [HostSpec(url="redis://localhost:6379")]
    assert parse_hosts("redis://h:1") == [HostSpec(url="redis://h:1")]


def test_sentinel_forms() -> None:
    (short,) = parse_hosts(sentinels=[("s1", 26379)], master_name="mymaster")
    (long,) = parse_hosts([{"sentinels": [("s1", 26379)], "master_name": "mymaster", "db": 1}])
    assert short.kind == long.kind == "sentinel"
    assert short.identity == "sentinel:mymaster@s1:26379"
    assert long.options == {"db": 1}


def test_cluster_hosts_are_startup_nodes_of_one_shard() -> None:
    (spec,) = parse_hosts(["redis://:pw@n1:7000", ("n2", 7001)], cluster=True)
    assert spec.kind == "cluster"
    assert spec.cluster_nodes == (("n1", 7000), ("n2", 7001))
    assert spec.options == {"password": "pw"}


@pytest.mark.parametrize(
    ("hosts", "options"),
    [
        ([("h", "6379")], {}),
        ([42], {}),
        ([], {}),
        (["redis://a:1", "redis://a:1"], {}),
        (["redis://a:1"], {"sentinels": [("s", 1)], "master_name": "m"}),
        (None, {"sentinels": [("s", 1)]}),
        (None, {"master_name": "m"}),
        ([{"sentinels": [("s", 1)]}], {}),
    ],
)
def test_bad_hosts_are_refused(hosts: Any, options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        parse_hosts(hosts, **options)


def test_sharding_is_stable_spread_and_moves_little_when_a_shard_joins() -> None:
    three = ["redis://a:1/0", "redis://b:1/0", "redis://c:1/0"]
    names = [f"group-{n}" for n in range(3000)]
    placed = {name: pick_shard(name, three) for name in names}
    backwards = list(reversed(three))  # the same shards listed in another order
    assert all(three[placed[n]] == backwards[pick_shard(n, backwards)] for n in names)
    spread = Counter(placed.values())
    assert all(800 < spread[i] < 1200 for i in range(3))
    four = [*three, "redis://d:1/0"]
    moved = [n for n in names if three[placed[n]] != four[pick_shard(n, four)]]
    assert all(pick_shard(n, four) == 3 for n in moved)  # only onto the new shard
    assert 500 < len(moved) < 1000


# -- inbox entries ----------------------------------------------------------------------------


def make_reader(capacity: int = 100) -> tuple[InboxReader, InMemoryChannelLayer, list[Any]]:
    local = InMemoryChannelLayer(capacity=capacity)
    reports: list[Any] = []
    reader = InboxReader(
        pid="me",
        inbox="p:inbox:{me}",
        count_key="p:count:{me}",
        ttl_ms=60_000,
        control=None,  # type: ignore[arg-type]  # delivery never uses it
        local=local,
        codec=Codec(),
        stats=RedisLayerStats(),
        report_group_full=lambda group, message, skipped: reports.append((group, skipped)),
        log_lines=AggregatedLog(),
        tasks=set(),
        own=OwnPushes(),
        on_reconnect=lambda: None,
    )
    local.stats = reader.stats
    return reader, local, reports


def entry(header: str, message: dict[str, Any]) -> bytes:
    return header.encode() + b"\n" + Codec().encode(message)


FAR = 99999999999999


async def test_sends_past_local_capacity_wait_in_overflow_in_order() -> None:
    reader, local, _ = make_reader(capacity=2)
    await reader.deliver(
        [entry(f"s {FAR} other:1 c.me!1", {"type": "m", "n": n}) for n in range(5)]
    )
    assert len(reader.overflow["c.me!1"]) == 3
    assert reader.decrements == {"c.me!1": 2}  # the overflowed ones still count in Redis
    got = []
    for _ in range(5):
        message = local.receive_nowait("c.me!1") or reader.take("c.me!1")
        assert message is not None
        got.append(message["n"])
    assert got == list(range(5))
    assert reader.decrements == {"c.me!1": 5}
    assert reader.overflow == {}


async def test_group_entries_skip_full_channels_and_report_them() -> None:
    reader, local, reports = make_reader(capacity=1)
    await local.send("full.me!1", {"type": "filler"})
    header = f"g {FAR} other:1 room full.me!1 free.me!2"
    await reader.deliver([entry(header, {"type": "chat"})])
    assert reports == [("room", 1)]
    assert local.receive_nowait("free.me!2") == {"type": "chat"}
    assert reader.decrements == {}  # group entries are not counted in Redis


async def test_a_group_entry_reaches_the_processs_own_members_and_the_channels_named() -> None:
    # ``g``: the members this process added itself (it knows them) plus channels named;
    # ``e``: only the channels named (the sender delivered to the others itself); ``d``: a
    # group_discard from another process of one of this process's members
    reader, local, _ = make_reader()
    await local.group_add("room", "a.me!1")
    await local.group_add("room", "b.me!2")
    await reader.deliver([entry(f"g {FAR} other:1 room c.me!3", {"type": "g"})])
    await reader.deliver([entry(f"e {FAR} other:2 room c.me!3", {"type": "e"})])
    await reader.deliver([b"d 0 other:0 room b.me!2\n"])
    await reader.deliver([entry(f"g {FAR} other:3 room", {"type": "after"})])
    assert local.receive_nowait("a.me!1") == {"type": "g"}
    assert local.receive_nowait("a.me!1") == {"type": "after"}
    assert local.receive_nowait("b.me!2") == {"type": "g"}
    assert local.receive_nowait("b.me!2") is None  # discarded before "after"
    assert local.receive_nowait("c.me!3") == {"type": "g"}
    assert local.receive_nowait("c.me!3") == {"type": "e"}
    # a channel that is both one of the process's own members and named (added elsewhere too)
    # gets a group message once, whichever kind
    await reader.deliver([entry(f"g {FAR} other:4 room a.me!1", {"type": "both"})])
    await reader.deliver([entry(f"e {FAR} other:5 room a.me!1", {"type": "sender.gave.it"})])
    assert local.receive_nowait("a.me!1") == {"type": "both"}
    assert local.receive_nowait("a.me!1") is None


async def test_expired_entries_are_counted_per_member() -> None:
    reader, _, _ = make_reader()
    await reader.deliver(
        [
            entry("s 1 other:1 c.me!1", {"type": "old"}),
            entry("g 1 other:2 room a.me!1 b.me!2", {"type": "old"}),
        ]
    )
    assert reader.stats.expired == 3
    assert reader.decrements == {"c.me!1": 1}


async def test_own_sequence_numbers_are_tracked() -> None:
    reader, _, _ = make_reader()
    for seq in (7, 8, 9):
        reader.own.accepted(seq)
    await reader.deliver([entry(f"s {FAR} me:8 c.me!1", {"type": "x"})])
    await reader.deliver([entry(f"s {FAR} other:7 c.me!1", {"type": "x"})])
    assert reader.own.unread == {7, 9}  # out of sequence order: 7 is still unread
    await reader.deliver([entry(f"s {FAR} me:10 c.me!1", {"type": "x"})])
    reader.own.accepted(10)  # read before the reply to its push came back
    assert reader.own.unread == {7, 9}
    reader.own.gone({7, 9})
    assert not reader.own.unread


async def test_a_flush_marker_drops_what_came_before_it() -> None:
    reader, local, _ = make_reader(capacity=1)
    done = reader.expect_flush(3)
    await reader.deliver(
        [
            entry(f"s {FAR} other:1 c.me!1", {"type": "before"}),
            entry(f"s {FAR} other:2 c.me!1", {"type": "before.overflow"}),
            b"f 0 me:3\n",
            entry(f"s {FAR} other:4 c.me!1", {"type": "after"}),
        ]
    )
    assert done.done()
    assert local.receive_nowait("c.me!1") == {"type": "after"}
    assert reader.take("c.me!1") is None


async def test_a_flush_still_gives_back_the_capacity_of_what_it_dropped() -> None:
    # Sends made after the flush's UNLINK and read before its marker were counted in Redis
    # anew: their slots must be given back, or the channel's capacity shrinks for good.
    reader, local, _ = make_reader(capacity=1)
    await reader.deliver(
        [
            entry(f"s {FAR} other:1 c.me!1", {"type": "before"}),
            entry(f"s {FAR} other:2 c.me!1", {"type": "before.overflow"}),
            b"f 0 me:3\n",
        ]
    )
    assert reader.decrements == {"c.me!1": 2}  # the delivered one and the overflowed one
    assert reader.overflow == {}
    assert local.receive_nowait("c.me!1") is None


async def test_entries_with_bad_names_or_types_are_undecodable_not_fatal() -> None:
    reader, local, _ = make_reader()
    await reader.deliver(
        [
            entry(f"s {FAR} o:1 bad.me!", {"type": "x"}),
            entry(f"s {FAR} o:1 c.me!1", {"type": "_private"}),
            entry(f"x {FAR} o:1 c.me!1", {"type": "x"}),
            entry(f"g {FAR} o:1 room bad.me!", {"type": "x"}),
            entry(f"s {FAR} o:1 c.me!1", {"type": "fine"}),
        ]
    )
    assert reader.stats.undecodable == 4
    assert local.receive_nowait("c.me!1") == {"type": "fine"}


def test_scripts_have_their_sha() -> None:
    assert len(scripts.SEND_LOCAL.sha) == 40
    assert scripts.SEND_LOCAL.command(("k",), 1)[:4] == ("EVALSHA", scripts.SEND_LOCAL.sha, 1, "k")
    assert len({s.sha for s in scripts.ALL}) == len(scripts.ALL)


def test_decrements_go_again_with_the_same_id_until_acknowledged() -> None:
    # A write that broke may have run in Redis: the retry must carry the same id (applied
    # once), and decrements owed since then wait for the next one.
    reader, _, _ = make_reader()
    reader.decrements = {"c.me!1": 2}
    first = reader._ack()
    reader._taken("c.me!1")
    assert reader._ack() == first
    assert first is not None
    assert first[-2:] == ("c.me!1", 2)


def test_commands_are_packed_as_redis_py_packs_them() -> None:
    from redis.asyncio.connection import Connection

    from channelworks.layers.redis.shard import pack_commands

    commands = [
        ("EVALSHA", "a" * 40, 1, "p:inbox:{x}", b"s 1 x:1 c.x!1\n\x00\xff", 100, 1.0),
        ("BLMOVE", "k", "h", "LEFT", "RIGHT", 1.0),
        ("CLIENT", "ID"),
    ]
    assert pack_commands(commands) == b"".join(Connection().pack_commands(commands))
    with pytest.raises(TypeError):
        pack_commands([("SET", "k", object())])


def test_packed_arguments_go_out_as_the_plain_ones_would() -> None:
    from redis.asyncio.connection import Connection

    from channelworks.layers.redis.sends import pack_arg, pack_head
    from channelworks.layers.redis.shard import Packed, pack_commands, unpacked

    runs = [("c.x!1", 100, [b"s 1 x:1 c.x!1\n\x00\r\n\xff", b"e2"]), ("c.x!22", 7, [b""])]
    plain: tuple[Any, ...] = ("EVALSHA", "a" * 40, 3, "i", "c", "a", 60000, 2)
    parts: list[bytes] = []
    for channel, capacity, entries in runs:
        plain += (channel, capacity, len(entries))
        parts.append(pack_head(channel.encode(), capacity) + pack_arg(b"%d" % len(entries)))
    for _, _, entries in runs:
        plain += tuple(entries)
        parts += [pack_arg(entry) for entry in entries]
    packed = Packed(9, b"".join(parts))
    command = ("EVALSHA", "a" * 40, 3, "i", "c", "a", 60000, 2, packed)
    expected = b"".join(Connection().pack_commands([plain, ("CLIENT", "ID")]))
    assert pack_commands([command, ("CLIENT", "ID")]) == expected
    # Clients that pack for themselves (Cluster) get the arguments back, as bytes.
    assert unpacked(command) == (
        *plain[:8],
        *(b"c.x!1", b"100", b"2", b"c.x!22", b"7", b"1"),
        *runs[0][2],
        b"",
    )
    assert unpacked(plain) is plain
    with pytest.raises(ValueError, match="not 8"):
        Packed(8, packed.data).args()


# -- the epoch of Redis' data -----------------------------------------------------------------


def test_a_held_group_send_is_sent_again_with_the_epoch_learnt_since() -> None:
    from channelworks.layers.redis import RedisChannelLayer

    layer = RedisChannelLayer(hosts=["redis://127.0.0.1:1"])
    command = scripts.GROUP_SEND.command(
        ("k:group", "k:epoch"), 1, "k", "h", b"p", 60, "me", "", "old", "me", 5000, 60000
    )
    assert scripts.rearm(command, "old") is command
    again = scripts.rearm(command, "new")
    assert again[:12] == command[:12]
    assert again[12] == "new"
    assert again[13:] == command[13:]
    assert scripts.held([-1, b"new 1000", 400])
    assert not scripts.held([0, 0, b"normal-member"])
    # first sight: learnt, not counted; a new id: counted once, the window left is returned
    epochs = layer._epochs
    assert epochs.saw(0, [b"e1 0", 500]) == 0.0
    assert epochs.known == {0: "e1"}
    assert epochs.saw(0, [-1, b"e2 3000", 1000]) == 2.0
    assert epochs.saw(0, [b"e2 3000", 2500]) == 0.5
    assert epochs.saw(1, [b"f1 0", 2500]) == 0.0  # each shard has its own
    assert epochs.known == {0: "e2", 1: "f1"}
    assert layer.stats.redis_restarts == 1
    assert layer._rearm(command)[12] == "e2"
    # a heartbeat restored the state in the epochs it saw; shards it did not touch hold none
    epochs.beaten({0: "e2"})
    assert epochs.restored == {0: "e2", 1: "f1"}
