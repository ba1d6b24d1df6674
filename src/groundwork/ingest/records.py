"""JSON / JSONL record files: each record becomes one document.

A ``.json`` file holds an array of objects (or one object); a ``.jsonl`` file one object per line.
``text_field`` names the text, ``id_field`` the stable id (default: ``<file>#<index>``), and
``metadata_fields`` the fields kept as filterable metadata. Example, the MultiHop-RAG corpus:
``--text-field body --id-field url --metadata-fields title,source,category,published_at``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from groundwork.errors import LoaderError
from groundwork.types import Document, Section

_DEFAULT_TEXT_FIELDS = ("text", "body", "content")


@dataclass(frozen=True)
class RecordOptions:
    text_field: str | None = None
    id_field: str | None = None
    metadata_fields: tuple[str, ...] = field(default_factory=tuple)


def _iter_records(path: Path, raw: str) -> Iterator[tuple[int, Any]]:
    if path.suffix.lower() == ".jsonl":
        for lineno, line in enumerate(raw.splitlines(), 1):
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as exc:
                raise LoaderError(str(path), f"line {lineno} is not valid JSON ({exc.msg}); fix or remove that line") from None
        return
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise LoaderError(str(path), f"not valid JSON at line {exc.lineno} column {exc.colno} ({exc.msg})") from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise LoaderError(str(path), "expected a JSON array of objects or one object")
    yield from enumerate(data, 1)


def load_records(path: Path, raw: str, options: RecordOptions) -> list[Document]:
    """Parse every record of ``path`` into a Document. Raises LoaderError naming the file and field."""
    docs: list[Document] = []
    source = str(path)
    for index, record in _iter_records(path, raw):
        where = f"record {index}"
        if not isinstance(record, dict):
            raise LoaderError(source, f"{where} is not a JSON object")
        text_field = options.text_field or next((f for f in _DEFAULT_TEXT_FIELDS if f in record), None)
        if text_field is None:
            raise LoaderError(source, f"{where} has none of the fields {', '.join(_DEFAULT_TEXT_FIELDS)}; pass --text-field")
        text = record.get(text_field)
        if not isinstance(text, str):
            raise LoaderError(source, f"{where}: field '{text_field}' is missing or not a string; check --text-field")
        if options.id_field:
            if record.get(options.id_field) in (None, ""):
                raise LoaderError(source, f"{where}: id field '{options.id_field}' is missing; check --id-field")
            doc_id = str(record[options.id_field])
        else:
            doc_id = f"{source}#{index}"
        metadata = {f: record.get(f) for f in options.metadata_fields if f in record}
        canonical = json.dumps(record, sort_keys=True, ensure_ascii=False).encode()
        title = str(record.get("title") or "")
        if not text.strip():
            continue  # an empty record has nothing to retrieve; it is not an error of the file
        docs.append(
            Document(
                doc_id=doc_id,
                source=source,
                sections=[Section(text=text.strip())],
                content_hash=hashlib.sha256(canonical).hexdigest(),
                title=title,
                metadata=metadata,
            )
        )
    if not docs:
        raise LoaderError(source, "no records with text")
    ids = [d.doc_id for d in docs]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise LoaderError(source, f"id '{dup}' occurs more than once; --id-field must be unique")
    return docs
