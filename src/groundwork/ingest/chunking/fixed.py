"""Fixed token windows with overlap, over the whole document text."""

from __future__ import annotations

import bisect

from groundwork.errors import ConfigError
from groundwork.index.embedder import Embedder
from groundwork.ingest.chunking.base import make_chunk
from groundwork.types import Chunk, Document


class FixedTokenChunker:
    """Windows of ``size`` tokens, each sharing ``overlap`` tokens with the previous one.

    Windows run across section boundaries; each chunk takes the heading path and page of the section
    where it starts.
    """

    def __init__(self, embedder: Embedder, size: int, overlap: int) -> None:
        if not 0 <= overlap < size:
            raise ConfigError(f"overlap ({overlap}) must be in [0, size={size})")
        self.embedder, self.size, self.overlap = embedder, size, overlap

    @property
    def fingerprint(self) -> str:
        return f"fixed:{self.size}:{self.overlap}:{self.embedder.model_id}"

    def chunk(self, document: Document) -> list[Chunk]:
        text = document.text
        starts, pos = [], 0
        for sec in document.sections:
            starts.append(pos)
            pos += len(sec.text) + 2  # sections are joined by "\n\n" in Document.text
        offsets = self.embedder.token_offsets(text)
        chunks: list[Chunk] = []
        step = self.size - self.overlap
        for first in range(0, len(offsets), step):
            window = offsets[first : first + self.size]
            begin, end = window[0][0], window[-1][1]
            section = document.sections[bisect.bisect_right(starts, begin) - 1]
            piece = text[begin:end].strip()
            if piece:
                chunks.append(make_chunk(document, len(chunks), piece, section, tokens=len(window)))
            if first + self.size >= len(offsets):
                break
        return chunks
