"""What every loader shares: the limits of one file (``LoadLimits``), the text budget counted while
extracting (``TextBudget``), strict UTF-8 decoding, building the Document, and the parsing report
(``describe``). The loaders themselves are in ``loaders`` (and ``formats``, ``mail``, ``ocr``).
"""

from __future__ import annotations

import codecs
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from groundwork.config import IngestSettings
from groundwork.errors import LoaderError
from groundwork.ingest.archives import ArchiveLimits
from groundwork.ingest.limits import OcrLimits, TableLimits
from groundwork.types import Document, Section


@dataclass(frozen=True)
class LoadLimits:
    """What one file may cost: ``max_text_chars`` characters of extracted text (per record for JSON and
    JSONL files, whose records are documents of their own), the ``archive`` limits of zip-based
    formats, the row limits of spreadsheets (``tables``), the attachments read from an e-mail, and
    OCR's limits. Defaults: the ingest settings' defaults."""

    max_text_chars: int = IngestSettings.model_fields["max_text_chars"].default
    archive: ArchiveLimits = field(default_factory=ArchiveLimits)
    tables: TableLimits = field(default_factory=TableLimits)
    max_attachments: int = IngestSettings.model_fields["max_attachments"].default
    ocr: OcrLimits = field(default_factory=OcrLimits)

    @classmethod
    def from_settings(cls, settings: IngestSettings) -> LoadLimits:
        return cls(
            max_text_chars=settings.max_text_chars,
            tables=TableLimits(
                settings.max_table_rows,
                settings.max_table_columns,
                settings.table_row_units,
                settings.table_rows_per_group,
            ),
            max_attachments=settings.max_attachments,
            ocr=OcrLimits(
                settings.ocr, settings.ocr_max_pages, settings.ocr_max_pixels, settings.ocr_dpi, settings.ocr_timeout_s
            ),
            archive=ArchiveLimits(
                max_unzipped_bytes=int(settings.max_unzipped_mb * 1e6),
                max_ratio=settings.max_zip_ratio,
                max_members=settings.max_zip_members,
                max_xml_nodes=settings.max_xml_nodes,
            ),
        )


class TextBudget:
    """The characters a file may still yield. ``take(text)`` returns ``text``, or raises LoaderError
    naming the limit and its setting as soon as the file's text passes ``max_chars``."""

    def __init__(self, path: Path, max_chars: int) -> None:
        self.path, self.max_chars, self.used = path, max_chars, 0

    def take(self, text: str) -> str:
        self.used += len(text)
        if self.used > self.max_chars:
            raise LoaderError(
                str(self.path),
                f"more than {self.max_chars:,} characters of text, over the limit (ingest.max_text_chars); "
                "split the file, or raise the limit",
            )
        return text


_DECODE_STEP = 1024 * 1024  # bytes decoded per step of a text file


def decode_text(path: Path, raw: bytes, budget: TextBudget | None = None) -> str:
    """Strict UTF-8 (a BOM is allowed). Binary content and invalid UTF-8 are errors, not mojibake.

    With a ``budget``, decoding stops (LoaderError) as soon as the text passes it."""
    head = raw[:8192]
    if b"\x00" in head:
        raise LoaderError(str(path), "binary content in a text file (NUL bytes); check the file type")
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    view, parts = memoryview(raw), []
    try:
        for pos in range(0, len(raw), _DECODE_STEP):
            part = decoder.decode(view[pos : pos + _DECODE_STEP], final=pos + _DECODE_STEP >= len(raw))
            parts.append(budget.take(part) if budget else part)
    except UnicodeDecodeError:
        # The incremental decoder's offsets are relative to its step: a plain decode of the bytes read
        # so far fails at the same first invalid byte, and reports its offset in the file.
        try:
            raw[: pos + _DECODE_STEP].decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise LoaderError(
                str(path),
                f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); re-save the file as UTF-8",
            ) from None
        raise
    text = "".join(parts)
    controls = sum(1 for ch in text[:8192] if ord(ch) < 32 and ch not in "\n\r\t\f")
    if controls > 0.05 * max(1, min(len(text), 8192)):
        raise LoaderError(str(path), "binary content in a text file (control characters); check the file type")
    return text


def make_document(path: Path, raw: bytes, sections: list[Section], title: str = "") -> list[Document]:
    sections = [s for s in sections if s.text.strip()]
    if not sections:
        raise LoaderError(str(path), "no text could be extracted")
    source = str(path)
    return [
        Document(
            doc_id=source,
            source=source,
            sections=sections,
            content_hash=hashlib.sha256(raw).hexdigest(),
            title=title or path.stem,
        )
    ]


def describe(docs: list[Document], loader: str, units: int, unit: str, warnings: Sequence[str] = ()) -> list[Document]:
    """Record what a loader found in each document's metadata, for the parsing report: ``parse_loader``
    (the format), ``parse_units`` and ``parse_unit`` (12 "pages", 8 "slides", 3 "sheets") and
    ``parse_warnings`` (what was skipped, "; "-joined). ``load_file`` adds ``parse_chars`` and
    ``parse_ocr_share``."""
    for doc in docs:
        doc.metadata.update(parse_loader=loader, parse_units=units, parse_unit=unit)
        if warnings:
            doc.metadata["parse_warnings"] = "; ".join(warnings)
    return docs


def finish_report(docs: list[Document], loader: str) -> list[Document]:
    """The parsing report's common fields: characters, the share of them read by OCR (0 to 1), and the
    loader and unit count where the loader gave none (one "sections" unit per section). Records of
    JSON/JSONL files get none: their metadata is the fields the user chose."""
    if loader in ("json", "jsonl"):
        return docs
    for doc in docs:
        chars = sum(len(s.text) for s in doc.sections)
        ocr_chars = sum(len(s.text) for s in doc.sections if s.metadata.get("ocr"))
        doc.metadata.setdefault("parse_loader", loader)
        doc.metadata.setdefault("parse_units", len(doc.sections))
        doc.metadata.setdefault("parse_unit", "sections")
        doc.metadata.setdefault("parse_warnings", "")
        doc.metadata.update(parse_chars=chars, parse_ocr_share=round(ocr_chars / chars, 4) if chars else 0.0)
    return docs


class SourceName:
    """The name of a source that is not a local file (``s3://bucket/key``, ``upload://tenant/name``):
    what loaders need of a path (``str()``, ``.suffix``, ``.stem``) without collapsing ``//``."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.name = uri.rstrip("/").rsplit("/", 1)[-1]
        self.suffix = "." + self.name.rsplit(".", 1)[1] if "." in self.name else ""
        self.stem = self.name[: len(self.name) - len(self.suffix)] if self.suffix else self.name

    def __str__(self) -> str:
        return self.uri

    def __repr__(self) -> str:
        return f"SourceName({self.uri!r})"
