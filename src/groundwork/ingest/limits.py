"""Limits of the spreadsheet and OCR loaders (from the ingest settings), kept apart from the loaders so
that ``LoadLimits`` can hold them without importing the loaders' libraries."""

from __future__ import annotations

from dataclasses import dataclass

from groundwork.config import IngestSettings

_DEFAULT = IngestSettings.model_fields


@dataclass(frozen=True)
class TableLimits:
    """Spreadsheets (XLSX, CSV): at most ``max_rows`` data rows per file, ``max_columns`` columns per row; a sheet of at most
    ``row_units`` rows is one section per row, a larger one a section per ``rows_per_group`` rows."""

    max_rows: int = _DEFAULT["max_table_rows"].default
    max_columns: int = _DEFAULT["max_table_columns"].default
    row_units: int = _DEFAULT["table_row_units"].default
    rows_per_group: int = _DEFAULT["table_rows_per_group"].default


@dataclass(frozen=True)
class OcrLimits:
    """OCR: on or off (``enabled``), pages OCR'd per PDF (``max_pages``), pixels per image
    (``max_pixels``, checked before decoding), the resolution PDF pages are rendered at (``dpi``), and
    the seconds one page may take (``timeout_s``)."""

    enabled: bool = _DEFAULT["ocr"].default
    max_pages: int = _DEFAULT["ocr_max_pages"].default
    max_pixels: int = _DEFAULT["ocr_max_pixels"].default
    dpi: int = _DEFAULT["ocr_dpi"].default
    timeout_s: float = _DEFAULT["ocr_timeout_s"].default
