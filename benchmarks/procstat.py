"""What a process costs, read from /proc: resident memory and CPU time (Linux only)."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Memory:
    """Bytes resident (``VmRSS``) and proportional set size (``Pss``, 0 if unknown)."""

    rss: int
    pss: int


def read_memory(pid: int) -> Memory:
    with open(f"/proc/{pid}/status") as status:
        rss = _kib_field(status.read(), "VmRSS:")
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            pss = _kib_field(rollup.read(), "Pss:")
    except OSError:
        pss = 0
    return Memory(rss=rss, pss=pss)


def read_cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds used so far by every thread of ``pid``."""
    with open(f"/proc/{pid}/stat") as stat:
        text = stat.read()
    # The command name (field 2) may hold spaces; fields after it start past its ')'.
    fields = text[text.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def _kib_field(text: str, name: str) -> int:
    for line in text.splitlines():
        if line.startswith(name):
            return int(line.split()[1]) * 1024
    return 0
