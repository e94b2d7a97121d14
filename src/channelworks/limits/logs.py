"""The limits' log: ``channelworks.limits``, aggregated (``channelworks.logs``).

A flood of refusals must not become a flood of log lines (issue #13): each reason gets at
most one line per interval, with the count since the last; ``stats`` stays exact.
"""

from __future__ import annotations

import logging

from channelworks.logs import AggregatedLog

logger = logging.getLogger("channelworks.limits")

#: the limits' aggregated lines, one instance for the process (keys: a reason)
limit_log = AggregatedLog()

__all__ = ["limit_log", "logger"]
