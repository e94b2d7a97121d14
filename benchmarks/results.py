"""What a benchmark run found: one row per figure, one value per contender."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

CONTENDERS = ("raw", "channelworks", "channels")


class Kind(Enum):
    """How a row's values compare: decides its unit formatting and its ratio text."""

    RATE = "rate"  # per second, higher is better
    SECONDS = "seconds"  # lower is better
    BYTES = "bytes"  # memory per connection, lower is better


@dataclass
class Row:
    key: str
    title: str
    unit: str
    kind: Kind
    values: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def row(self, key: str, title: str, unit: str, kind: Kind) -> Row:
        for row in self.rows:
            if row.key == key:
                return row
        new = Row(key, title, unit, kind)
        self.rows.append(new)
        return new

    def find(self, key: str) -> Row | None:
        for row in self.rows:
            if row.key == key:
                return row
        return None

    def get(self, key: str, contender: str) -> float | None:
        row = self.find(key)
        return None if row is None else row.values.get(contender)

    @property
    def failed(self) -> bool:
        return any(row.errors for row in self.rows)

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": [
                {
                    "key": row.key,
                    "title": row.title,
                    "unit": row.unit,
                    "kind": row.kind.value,
                    "values": row.values,
                    "errors": row.errors,
                }
                for row in self.rows
            ],
            "notes": self.notes,
        }
