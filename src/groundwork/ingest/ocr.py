"""OCR of images (PNG, JPEG, TIFF) and of PDF pages without a text layer.

Engine: Tesseract 5 (Debian ``tesseract-ocr`` with the ``eng`` LSTM model, installed by ``make
install``) through ``pytesseract``. It was chosen over RapidOCR by ``bench/ocr.py``: on 20 rendered
pages its character error rate was 0.16% against RapidOCR's 19.7% (whose bundled recognition model drops
the spaces between English words), and it was 4.5 times as fast; the figures are in docs/sources.md ("OCR").

Every OCR'd section's metadata says so: ``ocr`` True and ``ocr_confidence``, the mean of Tesseract's
word confidences (0 to 1), weighted by characters. PDF pages keep their page number; an image is page
1 (a multi-page TIFF: one page per frame).

Limits (``OcrLimits``): ``enabled`` (ingest.ocr; off, an image fails with that reason and a PDF's
pages without text are skipped with a warning); ``max_pages`` pages per document (further ones are
skipped with a warning); ``max_pixels`` per image, checked from the header before any pixel is
decoded (a decompression bomb), and PDF pages are rendered (pypdfium2, at ``dpi``) at a scale that
keeps them within it; ``timeout_s`` per page (a page that takes longer fails its file, no retry).
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from groundwork.errors import LoaderError
from groundwork.ingest.limits import OcrLimits
from groundwork.ingest.loading import LoadLimits, TextBudget, describe, make_document
from groundwork.ingest.records import RecordOptions
from groundwork.types import Document, Section

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
_FORMATS = ["PNG", "JPEG", "TIFF"]  # what Pillow may decode here, whatever the file's name says


def recognize(name: str, image: Any, timeout_s: float) -> tuple[str, float]:
    """(text, confidence) of a Pillow image: Tesseract's words, a line of text per line it found;
    confidence is the character-weighted mean word confidence in [0, 1] (0.0 when nothing was read).
    Raises LoaderError naming ``name`` when Tesseract is missing, fails or passes ``timeout_s``."""
    import pytesseract

    try:
        data = pytesseract.image_to_data(image, lang="eng", output_type=pytesseract.Output.DICT, timeout=timeout_s)
    except pytesseract.TesseractNotFoundError:
        raise LoaderError(
            name,
            "OCR needs Tesseract: install it (`make install`, or apt-get install tesseract-ocr), or set ingest.ocr = false",
        ) from None
    except RuntimeError as exc:  # pytesseract's timeout
        raise LoaderError(name, f"OCR took longer than {timeout_s:.0f} s on one page (ingest.ocr_timeout_s)") from exc
    except pytesseract.TesseractError as exc:
        raise LoaderError(name, f"OCR failed ({exc.message or exc.status})") from None
    lines: dict[tuple[int, int, int], list[str]] = {}
    weighted = chars = 0.0
    for word, conf, *key in zip(data["text"], data["conf"], data["block_num"], data["par_num"], data["line_num"]):
        word = str(word).strip()
        if not word or float(conf) < 0:
            continue
        lines.setdefault(tuple(key), []).append(word)
        weighted += float(conf) / 100 * len(word)
        chars += len(word)
    text = "\n".join(" ".join(words) for words in lines.values())
    return text, (weighted / chars if chars else 0.0)


def ocr_section(text: str, confidence: float, page: int) -> Section:
    return Section(text.strip(), page=page, metadata={"ocr": True, "ocr_confidence": round(confidence, 4)})


def _frames(path: Path, raw: bytes, limits: OcrLimits, warnings: list[str]) -> Iterator[Any]:
    """The image's frames (a TIFF may hold several), each checked against ``max_pixels`` before decoding."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(raw), formats=_FORMATS)  # reads the header only
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as exc:
        raise LoaderError(str(path), f"not a readable PNG, JPEG or TIFF image ({exc})") from None
    frames = getattr(image, "n_frames", 1)
    if frames > limits.max_pages:
        warnings.append(f"frames after the first {limits.max_pages} not OCR'd (ingest.ocr_max_pages)")
    for index in range(min(frames, limits.max_pages)):
        image.seek(index)
        width, height = image.size
        if width * height > limits.max_pixels:
            raise LoaderError(
                str(path),
                f"image of {width} x {height} pixels, over the {limits.max_pixels:,}-pixel limit "
                "(ingest.ocr_max_pixels): a decompression bomb, or a scan at too high a resolution",
            )
        try:
            image.load()
        except (OSError, ValueError) as exc:
            raise LoaderError(str(path), f"the image is corrupt or truncated ({exc})") from None
        yield image


def load_image(path: Path, raw: bytes, options: RecordOptions, limits: LoadLimits) -> list[Document]:
    """An image's text, through OCR (see the module docstring). Raises LoaderError naming the file."""
    if not limits.ocr.enabled:
        raise LoaderError(str(path), "images are read through OCR, which is off (ingest.ocr); turn it on to index them")
    budget, warnings, sections = TextBudget(path, limits.max_text_chars), [], []
    for page, frame in enumerate(_frames(path, raw, limits.ocr, warnings), 1):
        text, confidence = recognize(str(path), frame, limits.ocr.timeout_s)
        sections.append(ocr_section(budget.take(text), confidence, page))
    if not any(s.text for s in sections):
        raise LoaderError(str(path), "OCR found no text in the image")
    return describe(
        make_document(path, raw, sections), path.suffix.lower().lstrip("."), len(sections), "pages", warnings
    )


def ocr_pdf_pages(
    path: Path, raw: bytes, pages: list[int], limits: OcrLimits, budget: TextBudget, warnings: list[str]
) -> dict[int, Section]:
    """OCR'd sections of the PDF's ``pages`` (1-based numbers of pages without a text layer), at most
    ``limits.max_pages`` of them; the rest are named in ``warnings``. Raises LoaderError when pypdfium2
    cannot open the file."""
    import pypdfium2 as pdfium

    if not limits.enabled:
        warnings.append(f"{len(pages)} page(s) without a text layer not OCR'd (ingest.ocr is off)")
        return {}
    if len(pages) > limits.max_pages:
        warnings.append(
            f"{len(pages) - limits.max_pages} page(s) without a text layer not OCR'd (ingest.ocr_max_pages)"
        )
    try:
        pdf = pdfium.PdfDocument(raw)
    except pdfium.PdfiumError as exc:
        raise LoaderError(str(path), f"the PDF cannot be rendered for OCR ({exc})") from None
    out = {}
    try:
        for number in pages[: limits.max_pages]:
            page = pdf[number - 1]
            width, height = page.get_size()  # points (1/72 inch)
            # Within max_pixels whatever the page size claims: a huge page is rendered at a lower scale.
            scale = min(limits.dpi / 72, math.sqrt(limits.max_pixels / max(width * height, 1.0)))
            image = page.render(scale=scale).to_pil()
            text, confidence = recognize(str(path), image, limits.timeout_s)
            if text.strip():
                out[number] = ocr_section(budget.take(text), confidence, number)
    finally:
        pdf.close()
    return out
