"""Spreadsheets (XLSX sheets, CSV files) as row units a reader can cite as "sheet S, row R".

A sheet of at most ``TableLimits.row_units`` data rows becomes one section per row, its header
repeated as ``column: value`` pairs, so that one row is retrieved (and cited) on its own. A larger
sheet becomes one section per ``rows_per_group`` rows, a Markdown table whose header row is repeated
in every group and whose first column is the row number. Each section's ``page`` is its (first) row
number as the spreadsheet shows it (1-based, the header row included), which ``page_label`` names
"row"; the heading path is the sheet (XLSX) and, for a group, its rows.

CSV is read with the standard library's ``csv`` module (dialect sniffed from the first 64 KiB; a
field longer than ``csv.field_size_limit()``, 131,072 characters by default, fails the file).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from groundwork.errors import LoaderError
from groundwork.ingest.limits import TableLimits
from groundwork.types import Section

Row = tuple[int, list[str]]  # (row number as the spreadsheet shows it, cell texts)


def cell_text(value: Any) -> str:
    """A cell as one line of text: None is empty; a table's separators cannot be forged by a cell."""
    if value is None:
        return ""
    text = value.isoformat(sep=" ") if hasattr(value, "isoformat") and not isinstance(value, str) else str(value)
    return " ".join(text.split()).replace("|", "/")


class RowCounter:
    """Rows of one file counted against ``TableLimits.max_rows``, and their width against
    ``max_columns``, while they are read. Raises LoaderError naming the limit and its setting."""

    def __init__(self, path: Path, limits: TableLimits) -> None:
        self.path, self.limits, self.count = path, limits, 0

    def take(self, rows: Iterable[Row]) -> Iterator[Row]:
        for row in rows:
            self.count += 1
            if self.count > self.limits.max_rows:
                raise LoaderError(
                    str(self.path),
                    f"more than {self.limits.max_rows:,} rows, over the limit (ingest.max_table_rows); split the "
                    "file, or raise the limit",
                )
            yield row

    def non_empty(self, rows: Iterable[tuple[int, Sequence[Any]]]) -> Iterator[Row]:
        """Rows with at least one non-empty cell, trailing empty cells dropped; a row wider than
        ``max_columns`` fails the file before its cells are read (a crafted sheet can declare 16,384
        columns for every row)."""
        for number, values in rows:
            if len(values) > self.limits.max_columns:
                raise LoaderError(
                    str(self.path),
                    f"row {number} has {len(values):,} columns, over the limit of {self.limits.max_columns:,} "
                    "(ingest.max_table_columns)",
                )
            cells = [cell_text(v) for v in values]
            while cells and not cells[-1]:
                cells.pop()
            if cells:
                yield number, cells


def row_sections(sheet: str | None, rows: list[Row], limits: TableLimits) -> list[Section]:
    """Sections of one sheet (``sheet`` None: a CSV file, whose heading path has no sheet): the first
    row is the header, the rest are data rows (see the module docstring)."""
    if not rows:
        return []
    (_, header), data = rows[0], rows[1:]
    width = max([len(header)] + [len(c) for _, c in data])
    names = [header[i] if i < len(header) and header[i] else f"column {i + 1}" for i in range(width)]
    head = (f"sheet {sheet}",) if sheet is not None else ()
    if not data:
        return [Section(" | ".join(header), head, rows[0][0])]
    if len(data) <= limits.row_units:
        return [Section(_row_unit(names, cells), head, number) for number, cells in data]
    out = []
    for start in range(0, len(data), limits.rows_per_group):
        group = data[start : start + limits.rows_per_group]
        first, last = group[0][0], group[-1][0]
        out.append(Section(_row_group(names, group), (*head, f"rows {first}-{last}"), first))
    return out


def _row_unit(names: list[str], cells: list[str]) -> str:
    return " | ".join(f"{names[i]}: {v}" for i, v in enumerate(cells) if v)


def _row_group(names: list[str], group: list[Row]) -> str:
    lines = ["| row | " + " | ".join(names) + " |", "|" + " --- |" * (len(names) + 1)]
    for number, cells in group:
        lines.append(f"| {number} | " + " | ".join(cells + [""] * (len(names) - len(cells))) + " |")
    return "\n".join(lines)


def csv_rows(path: Path, text: str, counter: RowCounter) -> list[Row]:
    """The non-empty rows of a CSV text, numbered as a spreadsheet opening the file numbers them (one
    row per record, the header row 1, a quoted field may span lines). Raises LoaderError for a malformed file or a field over
    the csv module's field size limit."""
    if path.suffix.lower() == ".tsv":
        dialect: type[csv.Dialect] = csv.excel_tab
    else:
        try:
            dialect = csv.Sniffer().sniff(text[:65536], delimiters=",;\t|")
        except csv.Error:
            dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        return list(counter.take(counter.non_empty(enumerate(reader, 1))))
    except csv.Error as exc:
        raise LoaderError(
            str(path), f"not a readable CSV file (line {reader.line_num}: {exc}); check its quoting and field sizes"
        ) from None
