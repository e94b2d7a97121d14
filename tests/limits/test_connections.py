"""Connection counts per process and per user, handshake limits, and admission."""

from __future__ import annotations

import logging
import sys

import pytest

from channelworks.limits import Limits, stats
from channelworks.limits.connections import Connections, Slot
from channelworks.limits.guard import admit, user_key
from channelworks.limits.handshake import handshake_refusal


def test_the_process_cap_refuses_the_next_connection_until_one_ends() -> None:
    where = Connections()
    slots = [where.admit(None, 2, None) for _ in range(2)]
    assert where.admit(None, 2, None) == "process"
    first = slots[0]
    assert isinstance(first, Slot)
    first.release()
    first.release()  # idempotent
    assert isinstance(where.admit(None, 2, None), Slot)
    assert where.total == 2


def test_the_user_cap_counts_each_user_alone_and_not_anonymous() -> None:
    where = Connections()
    assert isinstance(where.admit("ann", None, 1), Slot)
    assert where.admit("ann", None, 1) == "user"
    assert isinstance(where.admit("bob", None, 1), Slot)
    assert all(isinstance(where.admit(None, None, 1), Slot) for _ in range(3))
    assert where.count("ann") == 1
    assert where.total == 5


def test_a_users_bucket_outlives_its_connections_until_it_refills() -> None:
    where = Connections()
    slot = where.admit("ann", None, None)
    assert isinstance(slot, Slot)
    bucket = where.user_bucket("ann", 1, 2, 0.0)
    assert where.user_bucket("ann", 1, 2, 0.0) is bucket
    bucket.take(0.0, 2)
    slot.release()
    assert where.users == {}
    assert where.total == 0
    again = where.admit("ann", None, None)  # reconnecting gives no fresh burst
    assert isinstance(again, Slot)
    assert where.user_bucket("ann", 1, 2, 0.5) is bucket
    assert not bucket.take(0.5)
    again.release()
    where.prune(1.0)  # not full yet (1.5 tokens): kept
    assert where.idle == {"ann": bucket}
    where.prune(2.0)  # refilled: forgotten
    assert where.idle == {}


def scope(**extra: object) -> dict[str, object]:
    return {"type": "websocket", "path": "/ws/", "raw_path": b"/ws/", "headers": [], **extra}


@pytest.mark.parametrize(
    ("changes", "limits", "reason"),
    [
        ({"headers": [(b"cookie", b"x" * 100)]}, Limits(max_header_bytes=100), "headers"),
        ({"subprotocols": ["a", "b", "c"]}, Limits(max_subprotocols=2), "subprotocols"),
        ({"raw_path": b"/" + b"p" * 20}, Limits(max_path_length=20), "path"),
        ({"query_string": b"q" * 16}, Limits(max_path_length=20), "path"),
    ],
)
def test_a_handshake_over_a_limit_is_refused(
    changes: dict[str, object], limits: Limits, reason: str
) -> None:
    assert handshake_refusal(scope(**changes), limits) == reason
    assert handshake_refusal(scope(**changes), Limits.off()) is None


def test_a_handshake_at_the_limits_passes() -> None:
    limits = Limits(max_header_bytes=100, max_subprotocols=2, max_path_length=20)
    fits = scope(
        headers=[(b"cookie", b"x" * 94)], subprotocols=["a", "b"], raw_path=b"/" + b"p" * 19
    )
    assert handshake_refusal(fits, limits) is None


async def test_admit_counts_and_logs_each_refusal_once_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    where = Connections()
    limits = Limits(max_connections=1)
    assert not isinstance(admit(scope(), limits, None, 0.0, where), str)
    with caplog.at_level(logging.WARNING, "channelworks.limits"):
        assert [admit(scope(), limits, None, 0.0, where) for _ in range(3)] == ["process"] * 3
    assert stats.refused_process_cap == 3
    lines = [r.getMessage() for r in caplog.records if "max_connections=1" in r.getMessage()]
    assert len(lines) == 1  # one line per reason per interval


def test_admit_builds_only_the_limits_that_are_on() -> None:
    where = Connections()
    guard = admit(scope(), Limits.off(), "ann", 0.0, where)
    assert not isinstance(guard, str)
    assert guard.inbound is None
    assert guard.watch is None
    guard.release()
    assert where.total == 0


async def test_admit_shares_a_user_bucket_between_its_connections() -> None:
    where = Connections()
    limits = Limits(user_messages_per_second=1, user_message_burst=2)
    first = admit(scope(), limits, "ann", 0.0, where)
    second = admit(scope(), limits, "ann", 0.0, where)
    assert not isinstance(first, str)
    assert not isinstance(second, str)
    assert first.inbound is not None
    assert second.inbound is not None
    assert first.inbound.user is second.inbound.user is not None
    first.release()
    second.release()


async def test_a_flooded_connections_spent_buckets_pass_to_its_address_until_refilled() -> None:
    where = Connections()
    limits = Limits(messages_per_second=10, message_burst=5)
    client = {"client": ("10.0.0.1", 40000)}
    flooder = admit(scope(**client), limits, None, 0.0, where)
    assert not isinstance(flooder, str)
    assert flooder.inbound is not None
    assert [flooder.inbound.allow(0.0, 1) for _ in range(6)] == [True] * 5 + [False]
    flooder.release(0.0)
    # the same address (another port) reconnects 0.1 s later: one token, not a fresh burst
    again = admit(scope(client=("10.0.0.1", 40001)), limits, None, 0.1, where)
    assert not isinstance(again, str)
    assert again.inbound is not None
    assert [again.inbound.allow(0.1, 1) for _ in range(2)] == [True, False]
    # another address is not touched
    other = admit(scope(client=("10.0.0.2", 40000)), limits, None, 0.1, where)
    assert not isinstance(other, str)
    assert other.inbound is not None
    assert all(other.inbound.allow(0.1, 1) for _ in range(5))
    # once refilled (5 tokens at 10/s), the address is forgotten and starts full
    assert where.flood_left("10.0.0.1", 0.7) is None
    assert "10.0.0.1" not in where.floods


async def test_a_connection_from_a_flooded_address_still_gets_a_tenth_of_its_burst() -> None:
    # another client behind the same NAT, connecting right after the flooder was closed
    where = Connections()
    limits = Limits(messages_per_second=8, message_burst=20)  # exact binary fractions
    flooder = admit(scope(client=("10.0.0.1", 1)), limits, None, 0.0, where)
    assert not isinstance(flooder, str)
    assert flooder.inbound is not None
    assert sum(flooder.inbound.allow(0.0, 1) for _ in range(21)) == 20
    flooder.release(0.0)
    neighbour = admit(scope(client=("10.0.0.1", 2)), limits, None, 0.0, where)
    assert not isinstance(neighbour, str)
    assert neighbour.inbound is not None
    assert [neighbour.inbound.allow(0.0, 1) for _ in range(3)] == [True, True, False]
    assert neighbour.inbound.allow(0.125, 1)  # then the refill rate, as for anyone


async def test_a_connection_that_never_met_its_limits_leaves_nothing_behind() -> None:
    where = Connections()
    limits = Limits(messages_per_second=10, message_burst=5)
    guard = admit(scope(client=("10.0.0.1", 1)), limits, None, 0.0, where)
    assert not isinstance(guard, str)
    assert guard.inbound is not None
    assert all(guard.inbound.allow(0.0, 1) for _ in range(4))  # a burst, but within it
    guard.release(0.0)
    assert where.floods == {}


async def test_flood_memory_can_be_turned_off_and_needs_a_client_address() -> None:
    where = Connections()
    for limits, extra in (
        (Limits(messages_per_second=10, message_burst=1, flood_memory=False), {"client": ("h", 1)}),
        (Limits(messages_per_second=10, message_burst=1), {}),
    ):
        guard = admit(scope(**extra), limits, None, 0.0, where)
        assert not isinstance(guard, str)
        assert guard.inbound is not None
        assert [guard.inbound.allow(0.0, 1) for _ in range(2)] == [True, False]
        guard.release(0.0)
    assert where.floods == {}
    with pytest.raises(ValueError, match="flood_memory"):
        Limits(flood_memory=1)  # type: ignore[arg-type]


def test_remembered_floods_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.modules["channelworks.limits.connections"], "_MAX_FLOODS", 3)
    where = Connections()
    for n in range(3):
        where.remember_flood(f"a{n}", (1.0 + n, 0.0), now=0.0)
    where.remember_flood("late", (9.0, 0.0), now=1.5)  # a0 has refilled by 1.5: it goes
    assert list(where.floods) == ["a1", "a2", "late"]
    where.remember_flood("later", (9.0, 0.0), now=1.5)  # none refilled: the oldest goes
    assert list(where.floods) == ["a2", "late", "later"]
    where.remember_flood("late", (5.0, 7.0), now=1.5)  # the same address keeps the emptier
    assert where.floods["late"] == (9.0, 7.0)


class User:
    def __init__(self, pk: int, authenticated: bool) -> None:
        self.pk, self.is_authenticated = pk, authenticated


class Unloaded:
    @property
    def is_authenticated(self) -> bool:
        raise RuntimeError("would block")


def test_the_user_key_is_the_authenticated_users_primary_key() -> None:
    assert user_key(scope(user=User(7, True))) == ("user", 7)
    assert user_key(scope(user=User(7, False))) is None
    assert user_key(scope()) is None
    assert user_key(scope(user=Unloaded())) is None


async def test_a_refused_long_path_is_logged_cut_short(caplog: pytest.LogCaptureFixture) -> None:
    limits = Limits(max_path_length=100)
    long = "/" + "p" * 5000
    with caplog.at_level(logging.WARNING, "channelworks.limits"):
        refused = admit(scope(path=long, raw_path=long.encode()), limits, None, 0.0, Connections())
    assert refused == "path"
    [line] = [record.getMessage() for record in caplog.records]
    assert "max_path_length=100" in line
    assert len(line) < 400
