"""Operations: live connections and their counters, connection logs, and the cross-process
status that ``channelworks status`` and the admin live view show (docs/operations.md).

Metrics built on these live in ``channelworks.metrics``.
"""

from channelworks.ops.connections import Connection, Observer, configure, observe, observer
from channelworks.ops.logs import ConnectionIdFilter, connection_id

__all__ = [
    "Connection",
    "ConnectionIdFilter",
    "Observer",
    "configure",
    "connection_id",
    "observe",
    "observer",
]
