"""File loaders: one function per format, each returning Documents made of Sections.

Every failure is a LoaderError naming the file and saying what to do; the sync step records it and
goes on with the next file. Formats: .md .markdown .txt .html .htm .pdf .docx .json .jsonl.

Limits (``LoadLimits``, from the ingest settings) bound what one file may cost: zip-based formats are
checked by ``archives.check_package`` before their parser opens them, and every loader counts the text
it extracts against ``max_text_chars`` as it goes (``TextBudget``), stopping as soon as it is passed.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from groundwork.config import IngestSettings
from groundwork.errors import LoaderError, UnsupportedFileError
from groundwork.ingest.archives import ArchiveLimits, check_package
from groundwork.ingest.markdown import markdown_sections, markdown_title
from groundwork.ingest.records import RecordOptions, load_records
from groundwork.types import Document, Section

if TYPE_CHECKING:
    from docx.text.paragraph import Paragraph


@dataclass(frozen=True)
class LoadLimits:
    """What one file may cost: ``max_text_chars`` characters of extracted text (per record for JSON and
    JSONL files, whose records are documents of their own), and the ``archive`` limits of zip-based
    formats. Defaults: the ingest settings' defaults."""

    max_text_chars: int = IngestSettings.model_fields["max_text_chars"].default
    archive: ArchiveLimits = field(default_factory=ArchiveLimits)

    @classmethod
    def from_settings(cls, settings: IngestSettings) -> LoadLimits:
        return cls(
            max_text_chars=settings.max_text_chars,
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


def _decode_text(path: Path, raw: bytes, budget: TextBudget | None = None) -> str:
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


def _doc(path: Path, raw: bytes, sections: list[Section], title: str = "") -> list[Document]:
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


def load_text(path: Path, raw: bytes, options: RecordOptions, limits: LoadLimits) -> list[Document]:
    text = _decode_text(path, raw, TextBudget(path, limits.max_text_chars))
    return _doc(path, raw, [Section(text=text.strip())])


def load_markdown(path: Path, raw: bytes, options: RecordOptions, limits: LoadLimits) -> list[Document]:
    text = _decode_text(path, raw, TextBudget(path, limits.max_text_chars))
    return _doc(path, raw, markdown_sections(text), markdown_title(text))


def load_html(path: Path, raw: bytes, options: RecordOptions, limits: LoadLimits) -> list[Document]:
    import trafilatura

    if b"\x00" in raw[:8192]:
        raise LoaderError(str(path), "binary content in an HTML file; check the file type")
    # Main-content extraction drops navigation, footers and boilerplate; Markdown keeps headings.
    # trafilatura extracts in one call, so its output is what the text budget sees (the input is
    # bounded by ingest.max_file_mb).
    text = trafilatura.extract(
        raw, output_format="markdown", include_tables=True, include_formatting=True, favor_recall=True
    )
    if not text:
        raise LoaderError(str(path), "no main content found in the HTML")
    TextBudget(path, limits.max_text_chars).take(text)
    meta = trafilatura.extract_metadata(raw)
    title = (meta.title if meta and meta.title else "") or markdown_title(text)
    return _doc(path, raw, markdown_sections(text), title)


def load_pdf(path: Path, raw: bytes, options: RecordOptions, limits: LoadLimits) -> list[Document]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    budget = TextBudget(path, limits.max_text_chars)
    with _pypdf_warnings() as warned:
        try:
            return _read_pdf(path, raw, budget, PdfReader)
        except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
            said = f"; pypdf: {'; '.join(dict.fromkeys(warned))}" if warned else ""
            raise LoaderError(
                str(path), f"not a readable PDF ({exc}{said}); the file may be corrupt or truncated"
            ) from None


@contextmanager
def _pypdf_warnings() -> Iterator[list[str]]:
    """pypdf's warnings while a PDF is read, collected (they belong in that file's reason) instead
    of printed on the terminal ahead of the ingest summary."""
    caught: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            caught.append(record.getMessage())

    logger, handler = logging.getLogger("pypdf"), Collect(logging.WARNING)
    logger.addHandler(handler)
    propagate, logger.propagate = logger.propagate, False
    try:
        yield caught
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


_PLACEHOLDER_TITLES = {"untitled", "untitled document", "document", "microsoft word - document1"}


def _read_pdf(path: Path, raw: bytes, budget: TextBudget, reader_cls: Any) -> list[Document]:
    reader = reader_cls(io.BytesIO(raw))
    if reader.is_encrypted:
        raise LoaderError(str(path), "the PDF is encrypted; decrypt it first")
    pages = [
        Section(text=budget.take((page.extract_text() or "").strip()), page=i) for i, page in enumerate(reader.pages, 1)
    ]
    title = str((reader.metadata or {}).get("/Title") or "").strip()
    if title.lower() in _PLACEHOLDER_TITLES:  # what PDF writers put when nobody set a title
        title = ""
    if not any(p.text for p in pages):
        raise LoaderError(str(path), "the PDF has no extractable text (a scan? run OCR first)")
    return _doc(path, raw, pages, title)


# OOXML keeps embedded objects (a chart's workbook, an attached .xlsx) as packages of their own here;
# python-docx keeps them as opaque bytes, never opens them.
DOCX_EMBEDDED_DIRS = ("word/embeddings/",)


def load_docx(path: Path, raw: bytes, options: RecordOptions, limits: LoadLimits) -> list[Document]:
    import docx
    from docx.table import Table

    check_package(str(path), raw, limits.archive, DOCX_EMBEDDED_DIRS, "DOCX")
    try:
        # python-docx parses every XML part with resolve_entities=False (docx/oxml/parser.py), and
        # libxml2 refuses entity amplification: a "billion laughs" part is not expanded.
        document = docx.Document(io.BytesIO(raw))
    except Exception as exc:  # python-docx raises zipfile/KeyError/ValueError variants
        raise LoaderError(str(path), f"not a readable DOCX ({type(exc).__name__}: {exc})") from None
    budget = TextBudget(path, limits.max_text_chars)
    style_names: dict[str | None, str] = {}
    sections: list[Section] = []
    path_stack: list[tuple[int, str]] = []
    buf: list[str] = []

    def flush() -> None:
        if buf:
            sections.append(Section(text="\n\n".join(buf), heading_path=tuple(h for _, h in path_stack)))
            buf.clear()

    for block in document.iter_inner_content():
        if isinstance(block, Table):
            rows = [budget.take(" | ".join(cell.text.strip() for cell in row.cells)) for row in block.rows]
            buf.append("\n".join(r for r in rows if r.strip(" |")))
            continue
        text = budget.take(block.text.strip())
        if not text:
            continue
        style = _style_name(block, style_names)
        if style.startswith("Heading") or style == "Title":
            level = int(style.split()[-1]) if style.split()[-1].isdigit() else 1
            flush()
            while path_stack and path_stack[-1][0] >= level:
                path_stack.pop()
            path_stack.append((level, text))
        buf.append(text)
    flush()
    title = document.core_properties.title or (
        sections[0].heading_path[0] if sections and sections[0].heading_path else ""
    )
    return _doc(path, raw, sections, title)


def _style_name(paragraph: Paragraph, names: dict[str | None, str]) -> str:
    """The paragraph's style name, resolved once per style id: python-docx's ``Paragraph.style`` scans
    every style of the document on each call for the default style (measured: 3 ms a paragraph with
    Word's default styles, so 30,000 paragraphs took 200 s)."""
    style_id = paragraph._p.style  # the w:pStyle value; None for the default paragraph style
    if style_id not in names:
        names[style_id] = (paragraph.style.name if paragraph.style is not None else "") or ""
    return names[style_id]


def load_json(path: Path, raw: bytes, options: RecordOptions, limits: LoadLimits) -> list[Document]:
    # The cap applies per record: each record is a document of its own, and the file as a whole is
    # bounded by ingest.max_file_mb (public corpora such as SciFact hold more than 5M characters).
    return load_records(path, _decode_text(path, raw), options, limits.max_text_chars)


Loader = Callable[[Path, bytes, RecordOptions, LoadLimits], list[Document]]

LOADERS: dict[str, Loader] = {
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".txt": load_text,
    ".html": load_html,
    ".htm": load_html,
    ".pdf": load_pdf,
    ".docx": load_docx,
    ".json": load_json,
    ".jsonl": load_json,
}


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


def check_size(name: str, suffix: str, size: int, max_bytes: int) -> None:
    """Raises UnsupportedFileError for an unknown type, LoaderError for an empty or oversized file."""
    if suffix.lower() not in LOADERS:
        raise UnsupportedFileError(name, f"unsupported file type '{suffix or '(none)'}'")
    if size == 0:
        raise LoaderError(name, "the file is empty")
    if size > max_bytes:
        raise LoaderError(name, f"{size / 1e6:.1f} MB exceeds the {max_bytes / 1e6:.1f} MB limit (ingest.max_file_mb)")


def read_file(path: Path, max_bytes: int) -> bytes:
    """Read a file's bytes, refusing empty and oversized files. Raises LoaderError / UnsupportedFileError."""
    check_size(str(path), path.suffix, path.stat().st_size if path.suffix.lower() in LOADERS else 1, max_bytes)
    return path.read_bytes()


def load_file(
    path: Path | SourceName, raw: bytes, options: RecordOptions | None = None, limits: LoadLimits | None = None
) -> list[Document]:
    """Load already-read bytes of ``path`` with the loader for its extension, within ``limits``
    (default: the default ingest settings). Raises LoaderError naming the file and the reason."""
    return LOADERS[path.suffix.lower()](path, raw, options or RecordOptions(), limits or LoadLimits())
