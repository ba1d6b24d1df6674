"""Structure-aware chunking: sections (headings), then paragraphs, then sentences, recursively.

Each section is split only as far as needed to fit ``size`` tokens, then neighbouring pieces are
merged greedily back up to ``size`` so chunks are as large as the structure allows. A Markdown table
(also one extracted from HTML) too long for one chunk is split into groups of rows, each under the
table's header row.
"""

from __future__ import annotations

import re

from groundwork.index.embedder import Embedder
from groundwork.ingest.chunking.base import (
    make_chunk,
    split_block_lines,
    split_paragraphs,
    token_windows,
)
from groundwork.text import SENTENCE_SPLITTER, split_sentences
from groundwork.types import Chunk, Document, Section

_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")  # a Markdown table's |---|---|


class StructureChunker:
    """Chunks of at most ``size`` tokens that respect section, paragraph and sentence boundaries.

    A section shorter than ``min_tokens`` is merged into the following section of the same document
    (keeping the first section's heading path), so one-line sections do not become lone chunks.
    """

    def __init__(self, embedder: Embedder, size: int, min_tokens: int = 0) -> None:
        self.embedder, self.size, self.min_tokens = embedder, size, min_tokens

    @property
    def fingerprint(self) -> str:
        return f"structure:{self.size}:{self.min_tokens}:{SENTENCE_SPLITTER}:{self.embedder.model_id}"

    def _split(self, text: str, sep: str = "\n\n") -> list[tuple[str, int, str]]:
        """(piece, tokens, separator) triples, each piece at most ``size`` tokens. The separator is
        what joins the piece to the one before it: a blank line, a newline (table rows, list items)
        or a space (sentences), so re-merged chunks keep the original layout."""
        n = self.embedder.count_tokens(text)
        if n <= self.size:
            return [(text, n, sep)]
        for splitter, inner in ((split_paragraphs, "\n\n"), (split_block_lines, "\n"), (split_sentences, " ")):
            parts = splitter(text)
            if splitter is split_block_lines and (groups := self._table_groups(parts)):
                return [(g, n, sep if i == 0 else "\n\n") for i, (g, n) in enumerate(groups)]
            if len(parts) > 1:
                pieces = [p for part in parts for p in self._split(part, inner)]
                pieces[0] = (pieces[0][0], pieces[0][1], sep)
                return pieces
        windows = token_windows(self.embedder, text, self.size, 0)
        return [(w, self.embedder.count_tokens(w), sep if i == 0 else " ") for i, w in enumerate(windows)]

    def _table_groups(self, lines: list[str]) -> list[tuple[str, int]] | None:
        """A Markdown table too long for one chunk as groups of rows, each under the table's header
        (its first line and the ``|---|`` rule), so that every chunk of the table says what its columns
        are; None when ``lines`` are not such a table, or a row with the header would not fit."""
        if len(lines) < 3 or not lines[0].lstrip().startswith("|") or not _TABLE_RULE.match(lines[1]):
            return None
        head = f"{lines[0]}\n{lines[1]}"
        head_n = self.embedder.count_tokens(head)
        groups: list[tuple[str, int]] = []
        rows: list[str] = []
        n = head_n
        for row in lines[2:]:
            row_n = self.embedder.count_tokens(row)
            if head_n + row_n > self.size:
                return None
            if rows and n + row_n > self.size:
                groups.append((head + "\n" + "\n".join(rows), n))
                rows, n = [], head_n
            rows.append(row)
            n += row_n  # word-piece counts add up across the newline between rows
        groups.append((head + "\n" + "\n".join(rows), n))
        return groups

    def _merge(self, pieces: list[tuple[str, int, str]]) -> list[tuple[str, int]]:
        """(chunk text, its tokens) pairs."""
        out: list[tuple[str, int]] = []
        cur, cur_n = "", 0
        for text, n, sep in pieces:
            # Word-piece counts add up across whitespace, so the sum is the merged chunk's count.
            if cur and cur_n + n > self.size:
                out.append((cur, cur_n))
                cur, cur_n = "", 0
            cur = f"{cur}{sep}{text}" if cur else text
            cur_n += n
        if cur:
            out.append((cur, cur_n))
        return out

    def split_sections(self, sections: list[Section]) -> list[tuple[str, int, Section]]:
        """(chunk text, its tokens, section it came from) triples, in document order."""
        merged: list[Section] = []
        for sec in sections:
            prev = merged[-1] if merged else None
            if prev is not None and prev.page == sec.page and self.embedder.count_tokens(prev.text) < self.min_tokens:
                merged[-1] = Section(prev.text + "\n\n" + sec.text, prev.heading_path, prev.page, prev.metadata)
            else:
                merged.append(sec)
        return [(text, n, sec) for sec in merged for text, n in self._merge(self._split(sec.text))]

    def chunk(self, document: Document) -> list[Chunk]:
        return [
            make_chunk(document, i, text, sec, tokens=n)
            for i, (text, n, sec) in enumerate(self.split_sections(document.sections))
        ]
