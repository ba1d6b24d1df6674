"""File loaders: one function per format, each returning Documents made of Sections.

Every failure is a LoaderError naming the file and saying what to do; the sync step records it and
goes on with the next file. Formats: .md .markdown .txt .html .htm .pdf .docx .json .jsonl here;
.pptx .xlsx .csv .tsv in ``formats``, .eml in ``mail``, images (.png .jpg .jpeg .tif .tiff) and the
OCR of PDF pages without a text layer in ``ocr``. Every document's metadata gets the parsing report
(``describe``).

Limits (``LoadLimits``, from the ingest settings) bound what one file may cost: zip-based formats are
checked by ``archives.check_package`` before their parser opens them, and every loader counts the text
it extracts against ``max_text_chars`` as it goes (``TextBudget``), stopping as soon as it is passed.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from groundwork.errors import LoaderError, UnsupportedFileError
from groundwork.ingest.archives import check_package
from groundwork.ingest.loading import LoadLimits, SourceName, TextBudget, describe, finish_report
from groundwork.ingest.loading import decode_text as _decode_text
from groundwork.ingest.loading import make_document as _doc
from groundwork.ingest.markdown import markdown_sections, markdown_title
from groundwork.ingest.records import RecordOptions, load_records
from groundwork.types import Document, Section

if TYPE_CHECKING:
    from docx.text.paragraph import Paragraph


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
            return _read_pdf(path, raw, budget, PdfReader, limits)
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


def _read_pdf(path: Path, raw: bytes, budget: TextBudget, reader_cls: Any, limits: LoadLimits) -> list[Document]:
    reader = reader_cls(io.BytesIO(raw))
    if reader.is_encrypted:
        raise LoaderError(str(path), "the PDF is encrypted; decrypt it first")
    pages = [
        Section(text=budget.take((page.extract_text() or "").strip()), page=i) for i, page in enumerate(reader.pages, 1)
    ]
    title = str((reader.metadata or {}).get("/Title") or "").strip()
    if title.lower() in _PLACEHOLDER_TITLES:  # what PDF writers put when nobody set a title
        title = ""
    warnings: list[str] = []
    if blank := [p.page for p in pages if not p.text and p.page is not None]:
        from groundwork.ingest.ocr import ocr_pdf_pages  # a scan: pages without a text layer

        read = ocr_pdf_pages(path, raw, blank, limits.ocr, budget, warnings)
        pages = [read.get(p.page, p) if p.page is not None else p for p in pages]
    if not any(p.text for p in pages):
        hint = "; ".join(warnings) or "OCR found no text either"
        raise LoaderError(str(path), f"the PDF has no extractable text ({hint})")
    return describe(_doc(path, raw, pages, title), "pdf", len(pages), "pages", warnings)


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
    suffix = path.suffix.lower()
    docs = LOADERS[suffix](path, raw, options or RecordOptions(), limits or LoadLimits())
    return finish_report(docs, suffix.lstrip("."))


def _more_loaders() -> dict[str, Loader]:
    """Formats whose loaders live in modules of their own (they use this module's helpers, so they are
    imported once those exist)."""
    from groundwork.ingest import formats, mail, ocr

    # An e-mail's attachments go through these same loaders (load_file), within the same limits.
    eml = partial(mail.load_eml, load=load_file, suffixes=LOADERS)

    return {
        ".pptx": formats.load_pptx,
        ".xlsx": formats.load_xlsx,
        ".csv": formats.load_csv,
        ".tsv": formats.load_csv,
        ".eml": eml,
        **dict.fromkeys(ocr.IMAGE_SUFFIXES, ocr.load_image),
    }


LOADERS.update(_more_loaders())
