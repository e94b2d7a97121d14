"""Token buckets: how many messages (or bytes) a sender may send, refilled over time.

Pure bookkeeping: the caller passes the time (``now``, in seconds on any monotonic clock), so
tests drive it with plain numbers. A bucket starts full. Taking more than is there takes
nothing: a refused message costs its sender no tokens, so a sender that slows down to the
rate is served again at once.
"""

from __future__ import annotations


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` kept; ``take`` spends them."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate <= 0 or burst <= 0:
            raise ValueError(f"a token bucket needs a positive rate and burst, got {rate}, {burst}")
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.stamp = now

    def level(self, now: float) -> float:
        """The tokens there at ``now`` (refilled since the last call; the clock never goes
        back: an earlier ``now`` refills nothing)."""
        elapsed = now - self.stamp
        if elapsed > 0:
            self.stamp = now
            tokens = self.tokens + elapsed * self.rate
            self.tokens = tokens if tokens < self.burst else self.burst
        return self.tokens

    def take(self, now: float, amount: float = 1.0) -> bool:
        """Spend ``amount`` tokens if they are there; return whether they were."""
        if self.level(now) >= amount:
            self.tokens -= amount
            return True
        return False


class Inbound:
    """One connection's inbound limits: messages, bytes, and its user's shared messages.

    Each bucket may be absent (that limit is off). ``allow`` spends from every bucket or from
    none: a frame refused by one limit does not use up another's tokens.
    """

    __slots__ = ("bytes", "messages", "user")

    def __init__(
        self,
        messages: TokenBucket | None,
        bytes_: TokenBucket | None,
        user: TokenBucket | None = None,
    ) -> None:
        self.messages = messages
        self.bytes = bytes_
        self.user = user

    def allow(self, now: float, size: int) -> bool:
        """Whether a frame of ``size`` bytes may pass at ``now``; if so, it is paid for."""
        messages, bytes_, user = self.messages, self.bytes, self.user
        if messages is not None and messages.level(now) < 1:
            return False
        if bytes_ is not None and bytes_.level(now) < size:
            return False
        if user is not None and user.level(now) < 1:
            return False
        if messages is not None:
            messages.tokens -= 1
        if bytes_ is not None:
            bytes_.tokens -= size
        if user is not None:
            user.tokens -= 1
        return True


__all__ = ["Inbound", "TokenBucket"]
