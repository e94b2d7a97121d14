"""The figures, one module each; ``FIGURES`` maps a ``--only`` name to its runner.

A runner takes the contenders to measure, the sizes, the results to fill and a function to
print progress with. Each contender gets a fresh server; one that fails is recorded as an
error in its rows and the others still run.
"""

from __future__ import annotations

from benchmarks.figures.common import Runner
from benchmarks.figures.crowd import run_crowd
from benchmarks.figures.echo import run_echo
from benchmarks.figures.fanout import run_fanout
from benchmarks.figures.layer import run_layer
from benchmarks.figures.limits import run_limits
from benchmarks.figures.memory import run_memory
from benchmarks.figures.metrics import run_metrics
from benchmarks.figures.rabbitmq import run_rabbitmq_group, run_rabbitmq_p2p
from benchmarks.figures.redis import run_redis_fanout, run_redis_group, run_redis_p2p
from benchmarks.figures.storm import run_storm

FIGURES: dict[str, Runner] = {
    "echo": run_echo,
    "fanout": run_fanout,
    "group_send": run_layer,
    "memory": run_memory,
    "limits": run_limits,
    "metrics": run_metrics,
    "redis_p2p": run_redis_p2p,
    "redis_group": run_redis_group,
    "redis_fanout": run_redis_fanout,
    "rabbitmq_p2p": run_rabbitmq_p2p,
    "rabbitmq_group": run_rabbitmq_group,
    "crowd": run_crowd,
    "storm": run_storm,
}

__all__ = ["FIGURES", "Runner"]
