"""JSON / JSONL record files: each record becomes one document.

A ``.json`` file holds an array of objects (or one object); a ``.jsonl`` file one object per line.
``text_field`` names the text, ``id_field`` the stable id (default: ``<file>#<index>``), and
``metadata_fields`` the fields kept as filterable metadata, ``title_field`` the document's title
(default: a field named ``title``; the title heads every chunk's indexed text, see Chunk.search_text). Example, the MultiHop-RAG corpus:
``--text-field body --id-field url --metadata-fields title,source,category,published_at``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from groundwork.errors import LoaderError
from groundwork.ingest.context import context_lines
from groundwork.ingest.metadata import check_value
from groundwork.types import Document, Section

_DEFAULT_TEXT_FIELDS = ("text", "body", "content")


@dataclass(frozen=True)
class RecordProblem:
    """A record that could not be read: ``label`` says where ("record 5", "line 7"), ``doc_id`` is set
    when the record's id could still be read (its indexed version is then kept, not deleted)."""

    label: str
    reason: str
    doc_id: str | None = None


class LoadedDocuments(list):
    """The documents of a records file, plus the records that failed (``problems``)."""

    def __init__(self, docs: list[Document], problems: list[RecordProblem]) -> None:
        super().__init__(docs)
        self.problems = problems


@dataclass(frozen=True)
class RecordOptions:
    """How records are read. ``id_prefix`` is put in front of every record id (uploads namespace
    their records' ids by the upload's own id, so one tenant's ids never meet another's)."""

    text_field: str | None = None
    id_field: str | None = None
    metadata_fields: tuple[str, ...] = field(default_factory=tuple)
    id_prefix: str = ""
    # Left out of repr: the eval index cache keys on repr(RecordOptions); EvalDataset.fingerprint adds it when set.
    title_field: str | None = field(default=None, repr=False)
    # Set by the ingest pipeline from ingest.metadata_context and the access-control fields (never
    # written as context); not stored per file and not compared.
    metadata_context: bool = field(default=False, repr=False, compare=False)
    context_exclude: tuple[str, ...] = field(default=(), repr=False, compare=False)


def _iter_records(path: Path, raw: str) -> Iterator[tuple[str, int, Any]]:
    """(label, index, record) triples; an unparsable JSONL line is yielded as a RecordProblem."""
    if path.suffix.lower() == ".jsonl":
        for lineno, line in enumerate(raw.splitlines(), 1):
            if not line.strip():
                continue
            try:
                yield f"line {lineno}", lineno, json.loads(line)
            except json.JSONDecodeError as exc:
                yield (
                    f"line {lineno}",
                    lineno,
                    RecordProblem(f"line {lineno}", f"not valid JSON ({exc.msg}); fix or remove that line"),
                )
        return
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise LoaderError(str(path), f"not valid JSON at line {exc.lineno} column {exc.colno} ({exc.msg})") from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise LoaderError(str(path), "expected a JSON array of objects or one object")
    for index, record in enumerate(data, 1):
        yield f"record {index}", index, record


def _record_document(
    source: str, index: int, record: Any, options: RecordOptions, max_text_chars: int | None = None
) -> Document | None:
    """One record as a Document (None for a record with empty text). Raises ValueError with the reason,
    also for a text longer than ``max_text_chars`` characters (ingest.max_text_chars)."""
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    text_field = options.text_field or next((f for f in _DEFAULT_TEXT_FIELDS if f in record), None)
    if text_field is None:
        raise ValueError(f"none of the fields {', '.join(_DEFAULT_TEXT_FIELDS)}; pass --text-field")
    text = record.get(text_field)
    if not isinstance(text, str):
        raise ValueError(f"field '{text_field}' is missing or not a string; check --text-field")
    if max_text_chars is not None and len(text) > max_text_chars:
        raise ValueError(
            f"more than {max_text_chars:,} characters of text, over the limit (ingest.max_text_chars); "
            "split the record, or raise the limit"
        )
    if options.id_field:
        if record.get(options.id_field) in (None, ""):
            raise ValueError(f"id field '{options.id_field}' is missing; check --id-field")
        doc_id = options.id_prefix + str(record[options.id_field])
    else:
        doc_id = f"{source}#{index}"
    if not text.strip():
        return None  # an empty record has nothing to retrieve; it is not an error
    metadata = {f: record.get(f) for f in options.metadata_fields if f in record}
    for name, value in metadata.items():
        if problem := check_value(name, value):
            raise ValueError(problem)
    title = _title(record, options.title_field)
    skip = (*options.context_exclude, options.title_field or "title")  # the title is the head line already
    context = context_lines(metadata, skip, title) if options.metadata_context else ""
    canonical = json.dumps(record, sort_keys=True, ensure_ascii=False).encode()
    if options.title_field:  # another title is other chunk text: the document is re-indexed
        canonical += f"\x00title_field={options.title_field}".encode()
    if context:  # so is context turned on or off
        canonical += b"\x00context"
    return Document(
        doc_id=doc_id,
        source=source,
        sections=[Section(text=text.strip())],
        content_hash=hashlib.sha256(canonical).hexdigest(),
        title=title,
        metadata=metadata,
        context=context,
    )


def _title(record: dict, title_field: str | None) -> str:
    """The record's title: ``title_field`` (a string or number) or, by default, ``title``.
    Raises ValueError naming --title-field when that field holds a list or an object."""
    value = record.get(title_field or "title")
    if title_field and isinstance(value, dict | list):
        raise ValueError(f"title field '{title_field}' is not a string or number; check --title-field")
    return str(value or "")


def load_records(path: Path, raw: str, options: RecordOptions, max_text_chars: int | None = None) -> LoadedDocuments:
    """Parse every record of ``path`` into a Document.

    A bad record (also one whose text passes ``max_text_chars`` characters) is a RecordProblem in the
    result's ``problems``, not a failure of the file: the other records are still indexed. Raises LoaderError (naming the file) when the file as a whole is
    unreadable, has no usable record, or repeats an id.
    """
    docs: list[Document] = []
    problems: list[RecordProblem] = []
    source = str(path)
    for label, index, record in _iter_records(path, raw):
        if isinstance(record, RecordProblem):
            problems.append(record)
            continue
        try:
            doc = _record_document(source, index, record, options, max_text_chars)
        except ValueError as exc:
            rid = record.get(options.id_field) if isinstance(record, dict) and options.id_field else None
            problems.append(RecordProblem(label, str(exc), str(rid) if rid not in (None, "") else None))
            continue
        if doc is not None:
            docs.append(doc)
    if not docs:
        first = f"; {problems[0].label}: {problems[0].reason}" if problems else ""
        raise LoaderError(source, f"no records with text{first}")
    ids = [d.doc_id for d in docs]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise LoaderError(source, f"id '{dup}' occurs more than once; --id-field must be unique")
    return LoadedDocuments(docs, problems)
