"""Reconnect delays: full-jitter exponential backoff, and what each close code means."""

from __future__ import annotations

import random
from collections.abc import Callable

from channelworks.topics import frames as f

#: close codes after which a client stops for good (docs/protocol.md "Close codes")
STOP_CODES = frozenset({f.NORMAL, f.SESSION_ENDED, f.FORBIDDEN})


def full_jitter(
    attempt: int, base: float, maximum: float, rand: Callable[[], float] = random.random
) -> float:
    """A delay in ``[0, min(maximum, base * 2**attempt)]``, uniformly (``attempt`` from 0)."""
    return float(rand() * min(maximum, base * 2.0 ** min(attempt, 32)))


def should_reconnect(code: int | None) -> bool:
    """Whether a socket closed with ``code`` reconnects (``None``: the network was lost)."""
    return code not in STOP_CODES


__all__ = ["STOP_CODES", "full_jitter", "should_reconnect"]
