"""Loaders of office formats: PPTX (python-pptx), XLSX (openpyxl) and CSV/TSV (the ``csv`` module).

- PPTX: one section per slide, ``page`` = the slide number (cited "slide N"), the slide title as its
  heading; body text, tables (one line per row, cells joined by " | ") and the speaker notes.
- XLSX and CSV: row units, see ``groundwork.ingest.tables``; an XLSX sheet's heading is
  "sheet <name>", and cell values are the values Excel last computed (``data_only``: formulas are not
  evaluated).

Both zip-based formats pass ``archives.check_package`` first (zip bombs, XML node count, nested
archives, and no DTD at all: OOXML parts never have one, and refusing it keeps entity expansion out of
every XML parser that reads them).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from groundwork.errors import LoaderError
from groundwork.ingest.archives import check_package
from groundwork.ingest.loading import LoadLimits, TextBudget, decode_text, describe, make_document
from groundwork.ingest.records import RecordOptions
from groundwork.ingest.tables import RowCounter, csv_rows, row_sections
from groundwork.types import Document, Section

PPTX_EMBEDDED_DIRS = ("ppt/embeddings/",)  # embedded packages (a chart's workbook): kept as bytes, never opened
XLSX_EMBEDDED_DIRS = ("xl/embeddings/",)


def load_pptx(path: Path, raw: bytes, options: RecordOptions, limits: LoadLimits) -> list[Document]:
    """One section per slide (see the module docstring). Raises LoaderError naming the file."""
    import pptx

    check_package(str(path), raw, limits.archive, PPTX_EMBEDDED_DIRS, "PPTX", allow_dtd=False)
    try:
        # python-pptx parses XML with resolve_entities=False (pptx/oxml/__init__.py), like python-docx.
        deck = pptx.Presentation(io.BytesIO(raw))
    except Exception as exc:  # python-pptx raises zipfile/KeyError/ValueError variants
        raise LoaderError(str(path), f"not a readable PPTX ({type(exc).__name__}: {exc})") from None
    budget = TextBudget(path, limits.max_text_chars)
    sections = []
    for number, slide in enumerate(deck.slides, 1):
        title_shape = slide.shapes.title
        title = budget.take(" ".join(title_shape.text.split())) if title_shape is not None else ""
        parts = [budget.take(t) for t in _shape_texts(slide.shapes, title_shape)]
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            notes = budget.take(slide.notes_slide.notes_text_frame.text.strip())
            if notes:
                parts.append(f"Speaker notes: {notes}")
        text = "\n\n".join(p for p in parts if p)
        if text or title:
            sections.append(Section(text or title, (title,) if title else (), number))
    docs = make_document(path, raw, sections, deck.core_properties.title or "")
    return describe(docs, "pptx", len(deck.slides), "slides")


def _shape_texts(shapes: Any, skip: Any) -> Iterator[str]:
    """Text of every shape in reading order (top to bottom, then left to right), groups included."""
    from pptx.shapes.group import GroupShape

    ordered = sorted(shapes, key=lambda s: ((s.top or 0), (s.left or 0)))
    for shape in ordered:
        if skip is not None and shape.shape_id == skip.shape_id:
            continue
        if isinstance(shape, GroupShape):
            yield from _shape_texts(shape.shapes, None)
        elif getattr(shape, "has_table", False) and shape.has_table:
            rows = (" | ".join(" ".join(c.text.split()) for c in row.cells) for row in shape.table.rows)
            yield "\n".join(r for r in rows if r.strip(" |"))
        elif getattr(shape, "has_text_frame", False) and shape.has_text_frame:
            yield shape.text_frame.text.strip()


def load_xlsx(path: Path, raw: bytes, options: RecordOptions, limits: LoadLimits) -> list[Document]:
    """Each sheet's rows as row units (see ``groundwork.ingest.tables``). Raises LoaderError naming the file."""
    import openpyxl

    check_package(str(path), raw, limits.archive, XLSX_EMBEDDED_DIRS, "XLSX", allow_dtd=False)
    try:
        book = openpyxl.load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile/KeyError/ValueError/TypeError variants
        raise LoaderError(str(path), f"not a readable XLSX ({type(exc).__name__}: {exc})") from None
    budget, counter = TextBudget(path, limits.max_text_chars), RowCounter(path, limits.tables)
    sections: list[Section] = []
    try:
        for sheet in book.worksheets:
            # The sheet's declared dimension (which a crafted file sets to A1:XFD1048576, and openpyxl pads every
            # row to) is dropped: rows are as wide as their last cell. Read-only sheets yield every row from
            # row 1 (gaps as empty rows), so the count is the row number.
            sheet.reset_dimensions()
            rows = list(counter.take(counter.non_empty(enumerate(sheet.iter_rows(values_only=True), 1))))
            for section in row_sections(" ".join(sheet.title.split()), rows, limits.tables):
                budget.take(section.text)
                sections.append(section)
        sheets = len(book.worksheets)
    except LoaderError:
        raise
    except Exception as exc:
        raise LoaderError(str(path), f"not a readable XLSX ({type(exc).__name__}: {exc})") from None
    finally:
        book.close()
    return describe(make_document(path, raw, sections, book.properties.title or ""), "xlsx", sheets, "sheets")


def load_csv(path: Path, raw: bytes, options: RecordOptions, limits: LoadLimits) -> list[Document]:
    """The file's rows as row units (see ``groundwork.ingest.tables``). Raises LoaderError naming the file."""
    text = decode_text(path, raw, TextBudget(path, limits.max_text_chars))
    rows = csv_rows(path, text, RowCounter(path, limits.tables))
    docs = make_document(path, raw, row_sections(None, rows, limits.tables))
    return describe(docs, path.suffix.lower().lstrip("."), max(len(rows) - 1, 0), "rows")
