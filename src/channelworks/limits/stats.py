"""The limits' counters: plain ints in one place, for an operator (and later Prometheus).

Rule: every refusal, drop or close made by a limit adds one here, at the moment it is
decided; nothing else writes these. They are process-wide and never reset by channelworks
(``reset()`` is for tests).
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass
class LimitStats:
    """How often each limit acted in this process since it started."""

    #: connections closed with 1008 because they sent faster than their inbound limits
    rate_closed: int = 0
    #: frames dropped (policy ``"drop"``) because they were over the inbound limits
    rate_dropped: int = 0
    #: connections closed with 1013 because the server did not take their frames in time
    #: (``send_timeout``) or too many sends were waiting (``max_pending_sends``)
    slow_closed: int = 0
    #: handshakes refused because the process had ``max_connections`` open
    refused_process_cap: int = 0
    #: handshakes refused because the user had ``max_connections_per_user`` open here
    refused_user_cap: int = 0
    #: handshakes refused for headers over ``max_header_bytes``
    refused_headers: int = 0
    #: handshakes refused for more than ``max_subprotocols`` subprotocols
    refused_subprotocols: int = 0
    #: handshakes refused for a path (with query string) over ``max_path_length``
    refused_path: int = 0

    def reset(self) -> None:
        """Set every counter back to 0 (for tests)."""
        for field in fields(self):
            setattr(self, field.name, 0)

    def as_dict(self) -> dict[str, int]:
        """Every counter by name."""
        return {field.name: getattr(self, field.name) for field in fields(self)}


#: the process's counters
stats = LimitStats()

__all__ = ["LimitStats", "stats"]
