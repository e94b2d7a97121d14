"""Counters of what happens on topics (channelworks.topics), kept for the metrics.

``TopicCounts`` is a topics observer (topics/observers.py): the topics consumer calls it
inline after each join, refusal and leave; it adds one to a plain counter keyed by the
topic's pattern (low cardinality; never the concrete topic name) and the reason. The
exporter reads the counters when scraped.
"""

from __future__ import annotations

from channelworks.topics.observers import TopicsObserver, observers

#: the pattern label of a join refused before any topic class matched
UNKNOWN = "unknown"
#: refusal (and leave) reasons counted per pattern at most; later ones under ``OTHER``: a
#: reason is the application's ``JoinRefused(reason)`` (or ``kick(reason=...)``), which may
#: hold data (a name, a date) that would grow the label without end
MAX_REASONS = 20
OTHER = "other"


class TopicCounts(TopicsObserver):
    def __init__(self) -> None:
        #: (pattern, outcome, reason) -> joins; outcome "joined" (reason "recovered",
        #: "not_recovered" or "no_history") or "refused" (reason: the refusal's)
        self.joins: dict[tuple[str, str, str], int] = {}
        #: (pattern, reason) -> sockets that left a topic
        self.leaves: dict[tuple[str, str], int] = {}
        #: pattern -> handlers of the topic that raised
        self.crashes: dict[str, int] = {}
        #: (kind, pattern) -> the reasons that have a label of their own
        self._reasons: dict[tuple[str, str], set[str]] = {}

    def _reason(self, kind: str, pattern: str, reason: str) -> str:
        """``reason`` as a label: its own for the first ``MAX_REASONS`` of a pattern."""
        known = self._reasons.setdefault((kind, pattern), set())
        if reason in known:
            return reason
        if len(known) >= MAX_REASONS:
            return OTHER
        known.add(reason)
        return reason

    def joined(self, pattern: str, topic: str, *, recovered: bool | None) -> None:
        reason = (
            "no_history" if recovered is None else "recovered" if recovered else "not_recovered"
        )
        key = (pattern, "joined", reason)
        self.joins[key] = self.joins.get(key, 0) + 1

    def refused(self, pattern: str | None, topic: str, reason: str) -> None:
        pattern = pattern or UNKNOWN
        key = (pattern, "refused", self._reason("refused", pattern, reason))
        self.joins[key] = self.joins.get(key, 0) + 1

    def left(self, pattern: str, topic: str, reason: str) -> None:
        key = (pattern, self._reason("left", pattern, reason))
        self.leaves[key] = self.leaves.get(key, 0) + 1

    def crashed(self, pattern: str, topic: str, event: str, error: BaseException) -> None:
        self.crashes[pattern] = self.crashes.get(pattern, 0) + 1


#: the process's counts, registered with the topics observers by ``install()``
counts = TopicCounts()


def install() -> None:
    """Start counting (idempotent)."""
    observers.add(counts)


__all__ = ["MAX_REASONS", "OTHER", "TopicCounts", "counts", "install"]
