"""Metadata values a knowledge base can store and filter: checked per record, before any write.

A number must be finite, and an integer within ±2^53 (the integers a float64 holds exactly, so that a
filter compares them exactly); other values are refused with the field named, the record fails alone and the rest of
the file is indexed. Each field holds one kind of value — number, bool or string (lists and objects
are kept as JSON text) — fixed by the first value the knowledge base stored for it (the LanceDB store
types a column per field; PostgreSQL's jsonb does not, and accepts any kind). A value of another kind
fails its record with a message naming the field and both kinds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

EXACT_INT = 2**53


def kind_of(value: Any) -> str:
    """number | bool | string (a list or object is stored as JSON text)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "string"


def check_value(field: str, value: Any) -> str | None:
    """Why ``value`` cannot be stored in metadata field ``field``, or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"metadata field '{field}': {value} is not a finite number"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > EXACT_INT:
        return f"metadata field '{field}': {value} is out of range (integers must be within ±2^53)"
    return None


class MetadataKinds:
    """The kind each metadata field holds, as stored plus what this run adds. ``None`` from the
    store: it accepts any kind per value (nothing to check but finiteness and range)."""

    def __init__(self, stored: Mapping[str, str] | None) -> None:
        self.typed = stored is not None
        self.kinds: dict[str, str] = dict(stored or {})

    def admit(self, metadata: Mapping[str, Any]) -> str | None:
        """Why a document with ``metadata`` may not be written, or None; records the kinds of new fields."""
        for field, value in metadata.items():
            if value is None:
                continue
            if problem := check_value(field, value):
                return problem
            if not self.typed:
                continue
            kind, held = kind_of(value), self.kinds.get(field)
            if held is None:
                self.kinds[field] = kind
            elif not _fits(kind, held, value):
                return (
                    f"metadata field '{field}' holds {held} values in this knowledge base, but this record has "
                    f"a {kind} ({value!r:.40}); send a {held}, or use another field name"
                )
        return None


def _fits(kind: str, held: str, value: Any) -> bool:
    if held == "integer":  # a column typed by an older index: whole numbers that fit it only
        return kind == "number" and float(value).is_integer() and abs(value) <= EXACT_INT
    return kind == held
