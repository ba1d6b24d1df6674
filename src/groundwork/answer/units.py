"""Answer units of the extractive generator: the sentences and table rows it may quote, and the
checks on what a question asks for.

- A sentence is quotable when it has 4+ words and lies outside code blocks and headings.
- A table (Markdown pipe table, or the ``a | b`` rows the DOCX loader writes) gives one unit per data
  row: the header row's cells paired with the row's cells, "Country: Japan; Per diem: 12,000", so a
  question about one row is answered by that row, cited, and not by the whole table.
- ``asks_for_value``: a question that asks for a number or amount (how many / how much / a rate, a
  price, a fee, an allowance), as opposed to a yes/no question; ``new_values``: the numbers and number
  words of a unit that the question does not already contain. A unit that only repeats the question's
  words without a value of its own does not answer a value question.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from groundwork.text import split_sentences
from groundwork.types import ContextChunk

_FENCED = re.compile(r"(```|~~~).*?(?:\1|\Z)", re.S)
_HEADING = re.compile(r"^\s*#{1,6}\s")
_MARKUP = re.compile(r"^\s*(?:#{1,6}\s+|[-*+]\s+|\d+[.)]\s+|>\s*)")
_TABLE_SEP = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?\s*$")
_YES_NO = re.compile(r"^\s*(?:does|did|do|is|was|are|were|has|have|had|can|could|will|would|should|may|must)\b", re.I)
_VALUE_QUESTION = re.compile(
    r"\bhow\s+(?:many|much|long|often|far|old)\b|\b(?:rate|rates|per\s+diem|allowance|price|cost|costs|fee|fees|"
    r"amount|percentage|salary|budget|limit)\b",
    re.I,
)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_NUMBER_WORDS = re.compile(
    r"\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|fifty|"
    r"hundred|thousand|million|billion|half|twice|dozen)\b"
)


@dataclass(frozen=True)
class Unit:
    """A quotable piece of one context chunk: ``n`` its citation number, ``order`` its place in the
    context, ``text`` what is quoted, ``head`` the chunk's title and heading path ("" when none)."""

    n: int
    order: int
    text: str
    head: str = ""
    table_row: bool = False


def _clean(sentence: str) -> str:
    lines = [_MARKUP.sub("", ln).strip() for ln in sentence.splitlines()]
    return " ".join(ln for ln in lines if ln)


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _is_row(line: str) -> bool:
    return "|" in line and len(_cells(line)) >= 2


def table_rows(lines: Sequence[str]) -> list[str]:
    """The data rows of one table block (its first row is the header) as "Header: cell; ..." texts;
    empty cells are left out. A block of one row is a row that carries its own column names (the
    XLSX/CSV loaders' "column: value | ..." chunks) and is one unit as it is."""
    rows = [_cells(ln) for ln in lines if not _TABLE_SEP.match(ln)]
    if len(rows) == 1:  # a row that names its own columns: a spreadsheet row chunk ("City: Bergen | Manager: ...")
        cells = [c for c in rows[0] if c]
        return ["; ".join(cells)] if len(cells) >= 2 else []
    if len(rows) < 2:
        return []
    header, out = rows[0], []
    for row in rows[1:]:
        pairs = [f"{h}: {c}" if h else c for h, c in zip(header, row) if c]
        if len(pairs) >= 2 or (pairs and len(pairs[0].split()) >= 4):
            out.append("; ".join(pairs))
    return out


def _paragraph_units(para: str) -> list[tuple[str, bool]]:
    """(text, is a table row) of one paragraph: table blocks become rows, the rest sentences."""
    out: list[tuple[str, bool]] = []
    text_lines: list[str] = []
    table: list[str] = []

    def flush_text() -> None:
        for sent in split_sentences("\n".join(text_lines)):
            clean = _clean(sent)
            if len(clean.split()) >= 4:
                out.append((clean, False))
        text_lines.clear()

    for ln in [*para.splitlines(), ""]:
        if ln.strip() and (_is_row(ln) or (table and _TABLE_SEP.match(ln))):
            if not table:
                flush_text()
            table.append(ln)
            continue
        if table:
            out += [(r, True) for r in table_rows(table)]
            table = []
        if not _HEADING.match(ln):
            text_lines.append(ln)
    flush_text()
    return out


def candidate_units(context: Sequence[ContextChunk]) -> list[Unit]:
    """Every quotable sentence and table row of ``context``, in context order."""
    out: list[Unit] = []
    for ctx in context:
        head = ctx.hit.chunk.search_head
        text = _FENCED.sub("\n\n", ctx.text)
        for para in re.split(r"\n\s*\n", text):
            for unit, row in _paragraph_units(para):
                out.append(Unit(ctx.n, len(out), unit, head, row))
    return out


def asks_for_value(question: str) -> bool:
    """True when ``question`` asks for a number or amount rather than yes or no."""
    return bool(_VALUE_QUESTION.search(question)) and not _YES_NO.match(question)


def _values(text: str) -> set[str]:
    nums = {n.replace(",", "") for n in _NUMBER.findall(text)}
    return nums | set(_NUMBER_WORDS.findall(text.lower()))


def new_values(unit: str, question: str) -> set[str]:
    """Numbers (commas dropped) and number words in ``unit`` that ``question`` does not contain."""
    return _values(unit) - _values(question)
