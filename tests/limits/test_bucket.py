"""Token buckets and a connection's inbound limits, driven with plain times."""

from __future__ import annotations

import pytest

from channelworks.limits.bucket import Inbound, TokenBucket


def test_a_bucket_starts_full_and_refuses_once_spent() -> None:
    bucket = TokenBucket(rate=10, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]


def test_a_bucket_refills_at_its_rate_up_to_its_burst() -> None:
    bucket = TokenBucket(rate=10, burst=3, now=0.0)
    for _ in range(3):
        bucket.take(0.0)
    assert bucket.take(0.05) is False  # half a token
    assert bucket.take(0.1) is True  # one token after 0.1 s
    assert bucket.level(100.0) == 3  # never more than the burst


def test_a_refused_take_spends_nothing() -> None:
    bucket = TokenBucket(rate=1, burst=5, now=0.0)
    assert bucket.take(0.0, 4)
    assert not bucket.take(0.0, 2)
    assert bucket.take(0.0, 1)


def test_a_clock_going_back_refills_nothing() -> None:
    bucket = TokenBucket(rate=100, burst=2, now=10.0)
    bucket.take(10.0, 2)
    assert bucket.level(5.0) == 0
    assert bucket.level(10.01) == pytest.approx(1.0)


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (1, 0), (-1, 5)])
def test_a_bucket_needs_a_positive_rate_and_burst(rate: float, burst: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        TokenBucket(rate, burst, 0.0)


def test_inbound_counts_messages_and_bytes() -> None:
    inbound = Inbound(TokenBucket(1, 2, 0.0), TokenBucket(100, 100, 0.0))
    assert inbound.allow(0.0, 60)
    assert not inbound.allow(0.0, 60)  # bytes: 40 left
    assert inbound.allow(0.0, 40)
    assert not inbound.allow(0.0, 0)  # messages: 2 spent


def test_inbound_refused_by_one_limit_spends_from_none() -> None:
    messages, bytes_, user = TokenBucket(1, 5, 0.0), TokenBucket(1, 10, 0.0), TokenBucket(1, 5, 0.0)
    inbound = Inbound(messages, bytes_, user)
    assert not inbound.allow(0.0, 11)
    assert (messages.tokens, bytes_.tokens, user.tokens) == (5, 10, 5)
    assert inbound.allow(0.0, 10)
    assert (messages.tokens, bytes_.tokens, user.tokens) == (4, 0, 4)


def test_a_shared_user_bucket_limits_every_connection_of_the_user() -> None:
    user = TokenBucket(1, 3, 0.0)
    first, second = Inbound(None, None, user), Inbound(None, None, user)
    assert [first.allow(0.0, 1), second.allow(0.0, 1), first.allow(0.0, 1)] == [True] * 3
    assert not second.allow(0.0, 1)
    assert not first.allow(0.0, 1)


def test_inbound_without_buckets_allows_everything() -> None:
    inbound = Inbound(None, None)
    assert all(inbound.allow(0.0, 10**9) for _ in range(1000))
