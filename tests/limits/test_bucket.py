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
    inbound = Inbound((1, 2), (100, 100), 0.0)
    assert inbound.allow(0.0, 60)
    assert not inbound.allow(0.0, 60)  # bytes: 40 left
    assert inbound.allow(0.0, 40)
    assert not inbound.allow(0.0, 0)  # messages: 2 spent


def test_inbound_refills_both_buckets_at_their_rates() -> None:
    inbound = Inbound((10, 1), (100, 50), 0.0)
    assert inbound.allow(0.0, 50)
    assert not inbound.allow(0.05, 1)  # half a message, 5 bytes
    assert not inbound.allow(0.1, 11)  # one message, but only 10 bytes
    assert inbound.allow(0.1, 10)
    assert inbound.tokens(0.1) == pytest.approx((0, 0))
    assert inbound.tokens(100.0) == (1, 50)  # never more than the bursts


def test_inbound_refused_by_one_limit_spends_from_none() -> None:
    user = TokenBucket(1, 5, 0.0)
    inbound = Inbound((1, 5), (1, 10), 0.0, user)
    assert not inbound.allow(0.0, 11)
    assert (*inbound.tokens(0.0), user.tokens) == (5, 10, 5)
    assert inbound.allow(0.0, 10)
    assert (*inbound.tokens(0.0), user.tokens) == (4, 0, 4)


def test_a_refused_frame_spends_nothing_from_the_connection() -> None:
    inbound = Inbound((1, 2), None, 0.0, TokenBucket(1, 1, 0.0))
    assert inbound.allow(0.0, 1)
    assert not inbound.allow(0.0, 1)  # the user's bucket is empty
    assert inbound.tokens(0.0)[0] == 1


def test_a_shared_user_bucket_limits_every_connection_of_the_user() -> None:
    user = TokenBucket(1, 3, 0.0)
    first, second = Inbound(None, None, 0.0, user), Inbound(None, None, 0.0, user)
    assert [first.allow(0.0, 1), second.allow(0.0, 1), first.allow(0.0, 1)] == [True] * 3
    assert not second.allow(0.0, 1)
    assert not first.allow(0.0, 1)


def test_inbound_without_limits_allows_everything() -> None:
    inbound = Inbound(None, None, 0.0)
    assert all(inbound.allow(0.0, 10**9) for _ in range(1000))
    assert inbound.tokens(0.0) == (float("inf"), float("inf"))


def test_inbound_needs_positive_rates_and_bursts() -> None:
    with pytest.raises(ValueError, match="positive"):
        Inbound((0, 1), None, 0.0)


def test_inbound_says_how_long_until_a_frame_could_pass() -> None:
    inbound = Inbound((10, 1), (100, 100), 0.0, TokenBucket(2, 1, 0.0))
    assert inbound.wait(0.0, 50) == 0
    assert inbound.allow(0.0, 50)
    assert inbound.wait(0.0, 50) == pytest.approx(0.5)  # the user's bucket: 1 token at 2/s
    assert inbound.wait(0.4, 50) == pytest.approx(0.1)
    assert inbound.wait(0.0, 101) == float("inf")  # over the byte burst: never
    assert Inbound((4, 1), None, 0.0).wait(0.0, 10**9) == 0


def test_inbound_bytes_wait() -> None:
    inbound = Inbound(None, (100, 100), 0.0)
    assert inbound.allow(0.0, 50)
    assert inbound.wait(0.0, 80) == pytest.approx(0.3)  # 30 more bytes at 100/s
