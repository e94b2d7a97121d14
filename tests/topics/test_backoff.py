"""Reconnect policy of the Python client."""

from __future__ import annotations

from channelworks.client.backoff import full_jitter, should_reconnect


def test_full_jitter_spans_zero_to_the_capped_exponential() -> None:
    assert full_jitter(0, 0.5, 10, rand=lambda: 1.0) == 0.5
    assert full_jitter(3, 0.5, 10, rand=lambda: 1.0) == 4.0
    assert full_jitter(10, 0.5, 10, rand=lambda: 1.0) == 10
    assert full_jitter(1000, 0.5, 10, rand=lambda: 0.5) == 5
    assert full_jitter(5, 0.5, 10, rand=lambda: 0.0) == 0


def test_stop_codes_do_not_reconnect() -> None:
    assert not any(should_reconnect(c) for c in (1000, 4401, 4403))
    assert all(should_reconnect(c) for c in (None, 1001, 1006, 1008, 1011, 1013, 4400, 4408))
