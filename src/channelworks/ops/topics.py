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


class TopicCounts(TopicsObserver):
    def __init__(self) -> None:
        #: (pattern, outcome, reason) -> joins; outcome "joined" (reason "recovered",
        #: "not_recovered" or "no_history") or "refused" (reason: the refusal's)
        self.joins: dict[tuple[str, str, str], int] = {}
        #: (pattern, reason) -> sockets that left a topic
        self.leaves: dict[tuple[str, str], int] = {}
        #: pattern -> handlers of the topic that raised
        self.crashes: dict[str, int] = {}

    def joined(self, pattern: str, topic: str, *, recovered: bool | None) -> None:
        reason = (
            "no_history" if recovered is None else "recovered" if recovered else "not_recovered"
        )
        key = (pattern, "joined", reason)
        self.joins[key] = self.joins.get(key, 0) + 1

    def refused(self, pattern: str | None, topic: str, reason: str) -> None:
        key = (pattern or UNKNOWN, "refused", reason)
        self.joins[key] = self.joins.get(key, 0) + 1

    def left(self, pattern: str, topic: str, reason: str) -> None:
        key = (pattern, reason)
        self.leaves[key] = self.leaves.get(key, 0) + 1

    def crashed(self, pattern: str, topic: str, event: str, error: BaseException) -> None:
        self.crashes[pattern] = self.crashes.get(pattern, 0) + 1


#: the process's counts, registered with the topics observers by ``install()``
counts = TopicCounts()


def install() -> None:
    """Start counting (idempotent)."""
    observers.add(counts)


__all__ = ["TopicCounts", "counts", "install"]
