"""Context lines: the metadata that describes a document, written into every chunk's indexed text.

A record's declared metadata fields (``--metadata-field source``) say what a question may name — a
publisher, an author, a date, a category — that the record's text often does not. Each becomes a
``field: value`` line after the title in ``Chunk.search_text``, so BM25 and the embedding both see it
(contextual chunk text: Anthropic, "Introducing Contextual Retrieval", 2024; LlamaIndex puts a node's
metadata as ``key: value`` lines into the text it embeds, ``MetadataMode.EMBED``). Measured on
MultiHop-RAG dev in docs/benchmarks.md ("Contextual chunk text: record metadata").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

MAX_VALUE_CHARS = 200  # one line's value; metadata limits (ingest.metadata) apply before this
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ][0-9:.]+)?(Z|[+-]\d{2}:?\d{2})?$")
_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


def context_lines(metadata: Mapping[str, Any], skip_fields: Iterable[str] = (), skip_value: str = "") -> str:
    """``field: value`` lines of ``metadata`` in its order ("" when none), leaving out ``skip_fields``
    (access-control fields), empty values and a value equal to ``skip_value`` (the title, already in
    the head line). ISO-8601 dates are written the way questions write them ("November 27, 2023"),
    lists comma-joined, whitespace collapsed, each value cut at MAX_VALUE_CHARS characters."""
    skip = set(skip_fields)
    lines = []
    for name, value in metadata.items():
        text = _value_text(value)
        if name in skip or not text or text == skip_value:
            continue
        lines.append(f"{name}: {text}")
    return "\n".join(lines)


def _value_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(t for t in (_value_text(v) for v in value) if t)[:MAX_VALUE_CHARS]
    if isinstance(value, bool):
        return "true" if value else "false"
    text = " ".join(str(value).split())
    if isinstance(value, str) and _ISO_DATE.match(text):
        try:
            d = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return text[:MAX_VALUE_CHARS]
        return f"{_MONTHS[d.month - 1]} {d.day}, {d.year}"  # not strftime: %B follows the locale
    return text[:MAX_VALUE_CHARS]
