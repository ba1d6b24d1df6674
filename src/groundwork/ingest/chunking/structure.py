"""Structure-aware chunking: sections (headings), then paragraphs, then sentences, recursively.

Each section is split only as far as needed to fit ``size`` tokens, then neighbouring pieces are
merged greedily back up to ``size`` so chunks are as large as the structure allows.
"""

from __future__ import annotations

from groundwork.index.embedder import Embedder
from groundwork.ingest.chunking.base import make_chunk, split_paragraphs, split_sentences, token_windows
from groundwork.types import Chunk, Document, Section


class StructureChunker:
    """Chunks of at most ``size`` tokens that respect section, paragraph and sentence boundaries.

    A section shorter than ``min_tokens`` is merged into the following section of the same document
    (keeping the first section's heading path), so one-line sections do not become lone chunks.
    """

    def __init__(self, embedder: Embedder, size: int, min_tokens: int = 0) -> None:
        self.embedder, self.size, self.min_tokens = embedder, size, min_tokens

    @property
    def fingerprint(self) -> str:
        return f"structure:{self.size}:{self.min_tokens}:{self.embedder.model_id}"

    def _split(self, text: str) -> list[tuple[str, int]]:
        """Pieces of text with their token counts, each at most ``size`` tokens."""
        n = self.embedder.count_tokens(text)
        if n <= self.size:
            return [(text, n)]
        for splitter in (split_paragraphs, split_sentences):
            parts = splitter(text)
            if len(parts) > 1:
                return [piece for part in parts for piece in self._split(part)]
        return [(w, self.embedder.count_tokens(w)) for w in token_windows(self.embedder, text, self.size, 0)]

    def _merge(self, pieces: list[tuple[str, int]]) -> list[str]:
        out: list[str] = []
        cur: list[str] = []
        cur_n = 0
        for text, n in pieces:
            # Word-piece counts add up across whitespace, so the sum is the merged chunk's count.
            if cur and cur_n + n > self.size:
                out.append("\n\n".join(cur))
                cur, cur_n = [], 0
            cur.append(text)
            cur_n += n
        if cur:
            out.append("\n\n".join(cur))
        return out

    def split_sections(self, sections: list[Section]) -> list[tuple[str, Section]]:
        """(chunk text, section it came from) pairs, in document order."""
        merged: list[Section] = []
        for sec in sections:
            prev = merged[-1] if merged else None
            if prev is not None and prev.page == sec.page and self.embedder.count_tokens(prev.text) < self.min_tokens:
                merged[-1] = Section(prev.text + "\n\n" + sec.text, prev.heading_path, prev.page)
            else:
                merged.append(sec)
        return [(text, sec) for sec in merged for text in self._merge(self._split(sec.text))]

    def chunk(self, document: Document) -> list[Chunk]:
        return [make_chunk(document, i, text, sec) for i, (text, sec) in enumerate(self.split_sections(document.sections))]
