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
    """One connection's inbound limits: messages and bytes, and its user's shared bucket.

    The connection's two buckets are kept in their "theoretical arrival time" form (GCRA),
    which is the same token bucket in fewer operations (this runs once per frame): a bucket
    of rate ``r`` and burst ``b`` admits a frame costing ``n`` tokens at ``now`` if
    ``max(tat, now) + n / r - now <= b / r``, and then that sum is its new ``tat``. It is
    full when ``tat <= now``. A limit that is off costs 0 and has an infinite window.
    ``allow`` spends from every bucket or from none.
    """

    __slots__ = (
        "byte_cost",
        "byte_rate",
        "byte_tat",
        "byte_window",
        "dropping",
        "message_cost",
        "message_rate",
        "message_tat",
        "message_window",
        "refused",
        "user",
    )

    def __init__(
        self,
        messages: tuple[float, float] | None,
        bytes_: tuple[float, float] | None,
        now: float,
        user: TokenBucket | None = None,
    ) -> None:
        """``messages`` and ``bytes_`` are ``(rate, burst)``, or ``None`` for no limit."""
        for pair in (messages, bytes_):
            if pair is not None and (pair[0] <= 0 or pair[1] <= 0):
                raise ValueError(f"a token bucket needs a positive rate and burst, got {pair}")
        self.message_rate, self.message_cost, self.message_window = _gcra(messages)
        self.byte_rate, self.byte_cost, self.byte_window = _gcra(bytes_)
        self.message_tat = self.byte_tat = now  # full
        self.user = user
        #: whether the last frame was refused (the policy "drop" tells the client once a run)
        self.dropping = False
        #: whether any frame was refused
        self.refused = False

    def allow(self, now: float, size: int) -> bool:
        """Whether a frame of ``size`` bytes may pass at ``now``; if so, it is paid for."""
        message_tat = self.message_tat
        if message_tat < now:
            message_tat = now
        message_tat += self.message_cost
        byte_tat = self.byte_tat
        if byte_tat < now:
            byte_tat = now
        byte_tat += size * self.byte_cost
        if message_tat - now > self.message_window or byte_tat - now > self.byte_window:
            self.refused = True
            return False
        user = self.user
        if user is not None and not user.take(now):
            self.refused = True
            return False
        self.message_tat = message_tat
        self.byte_tat = byte_tat
        return True

    def flooded(self, now: float) -> bool:
        """Whether a frame was refused and the connection's own buckets have not refilled
        by ``now``."""
        return self.refused and (self.message_tat > now or self.byte_tat > now)

    def inherit(self, message_tat: float, byte_tat: float) -> None:
        """Start from another connection's spent buckets (``tats()`` of it) where they are
        emptier than these, less ``INHERIT_GRACE`` of each burst: a client from the same
        address (behind one NAT or proxy) may still send its first frames at once."""
        self.message_tat = max(self.message_tat, message_tat - self.message_window * INHERIT_GRACE)
        self.byte_tat = max(self.byte_tat, byte_tat - self.byte_window * INHERIT_GRACE)

    def tats(self) -> tuple[float, float]:
        """The theoretical arrival times of the messages and bytes buckets."""
        return self.message_tat, self.byte_tat

    def tokens(self, now: float) -> tuple[float, float]:
        """The tokens of the messages and bytes buckets at ``now`` (infinite if off)."""
        return (
            _tokens(self.message_tat, self.message_window, self.message_rate, now),
            _tokens(self.byte_tat, self.byte_window, self.byte_rate, now),
        )

    def wait(self, now: float, size: int) -> float:
        """Seconds from ``now`` until a frame of ``size`` bytes could pass (0 if it could
        now; infinite if it never can: over the byte burst)."""
        waits = [
            max(self.message_tat, now) + self.message_cost - now - self.message_window,
            max(self.byte_tat, now) + size * self.byte_cost - now - self.byte_window,
            0.0,
        ]
        if size * self.byte_cost > self.byte_window:
            return _NONE
        user = self.user
        if user is not None and user.level(now) < 1:
            waits.append((1 - user.tokens) / user.rate)
        return max(waits)


def _gcra(pair: tuple[float, float] | None) -> tuple[float, float, float]:
    """(rate, cost of one token in seconds, window in seconds) of a ``(rate, burst)``; the
    same float objects for every connection with those limits (24 bytes each, per
    connection otherwise)."""
    if pair is None:
        return _OFF
    found = _GCRA.get(pair)
    if found is None:
        rate, burst = pair
        found = (rate, 1 / rate, burst / rate)
        if len(_GCRA) > 256:  # limits made per connection would otherwise pile up
            _GCRA.clear()
        _GCRA[pair] = found
    return found


def _tokens(tat: float, window: float, rate: float, now: float) -> float:
    if window == _NONE:
        return _NONE
    return (window - max(tat - now, 0.0)) * rate


#: the share of its burst a connection that starts from spent buckets gets at once
INHERIT_GRACE = 0.1
#: the burst of a limit that is off
_NONE = float("inf")
_OFF = (0.0, 0.0, _NONE)
#: ``_gcra``'s results by ``(rate, burst)``
_GCRA: dict[tuple[float, float], tuple[float, float, float]] = {}

__all__ = ["Inbound", "TokenBucket"]
