"""How big each benchmark is: the full defaults and the ``--quick`` smoke version."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

#: the in-memory layers' default channel capacity: a fan-out round must fit in it
LAYER_CAPACITY = 100


@dataclass(frozen=True)
class Sizes:
    echo_connections: int = 100
    echo_round_trips: int = 200
    echo_warmup: int = 10  # untimed round trips per connection first
    echo_passes: int = 5  # timed passes (client runs) per contender, interleaved; best counts
    sync_passes: int = 2  # the sync consumers are slow
    fanout_clients: int = 200
    fanout_messages: int = 50
    fanout_rounds: int = 5  # rounds per pass
    fanout_warmup: int = 5  # messages of an untimed first round
    fanout_passes: int = 5
    group_sizes: tuple[int, ...] = (10, 100, 1000)
    group_repeats: int = 50  # most group_send rounds per size
    group_budget: float = 5.0  # seconds per size, after which at least 3 rounds are kept
    p2p_messages: int = 20000
    p2p_passes: int = 3
    memory_connections: int = 1000
    memory_warmup: int = 50
    memory_settle: float = 1.0
    crowd_connections: int = 10_000  # idle connections in one room (figure 12)
    storm_clients: int = 2000  # clients connecting at once with their sessions (figure 13)
    redis_p2p_seconds: float = 1.0  # sending time per pass
    redis_p2p_tasks: int = 50  # concurrent sender tasks of the second mode
    redis_p2p_passes: int = 3  # per contender and mode, interleaved; best counts
    redis_group_members: int = 1000
    redis_group_processes: int = 1  # receiving processes the members are spread over
    redis_group_repeats: int = 30  # most timed rounds per contender
    redis_group_budget: float = 4.0  # seconds per contender, after which 3 rounds are kept
    redis_fanout_passes: int = 3
    limits_passes: int = 5  # echo passes per side (limits on, off), alternating; best counts
    flood_round_trips: int = 200  # the quiet client's round trips, alone and while flooded
    flood_interval: float = 0.02  # seconds between them: 50/s, under the default limits
    client_time_limit: float = 300.0

    def check(self) -> None:
        if self.fanout_messages > LAYER_CAPACITY:
            raise ValueError(
                f"fanout_messages={self.fanout_messages}: a round is sent back to back and "
                f"must fit in a channel's capacity ({LAYER_CAPACITY})"
            )
        for field in fields(self):
            value: Any = getattr(self, field.name)
            values = value if isinstance(value, tuple) else (value,)
            if any(v <= 0 for v in values):
                raise ValueError(f"{field.name} must be positive, got {value!r}")


QUICK = Sizes(
    echo_connections=10,
    echo_round_trips=20,
    echo_warmup=2,
    echo_passes=1,
    sync_passes=1,
    fanout_clients=20,
    fanout_messages=5,
    fanout_rounds=1,
    fanout_warmup=1,
    fanout_passes=1,
    group_sizes=(10, 100),
    group_repeats=5,
    group_budget=0.5,
    p2p_messages=1000,
    p2p_passes=1,
    memory_connections=50,
    memory_warmup=5,
    memory_settle=0.2,
    crowd_connections=100,
    storm_clients=50,
    redis_p2p_seconds=0.2,
    redis_p2p_tasks=5,
    redis_p2p_passes=1,
    redis_group_members=20,
    redis_group_repeats=3,
    redis_group_budget=0.5,
    redis_fanout_passes=1,
    limits_passes=1,
    flood_round_trips=20,
    flood_interval=0.02,
    client_time_limit=60.0,
)


def with_overrides(base: Sizes, overrides: dict[str, Any]) -> Sizes:
    """``base`` with every non-``None`` value of ``overrides`` applied."""
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})
