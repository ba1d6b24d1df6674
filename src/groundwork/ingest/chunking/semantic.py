"""Semantic chunking: keep sentences whole, split where the topic shifts.

Adjacent sentences are embedded; a boundary is placed where their cosine similarity falls below the
``percentile``-th percentile of all adjacent similarities in the document (the "percentile breakpoint"
method of Kamradt's 5 levels of text splitting, as in LangChain's SemanticChunker), and wherever the
next sentence would push the chunk past ``size`` tokens. Section boundaries are always boundaries.
"""

from __future__ import annotations

import numpy as np

from groundwork.errors import ConfigError
from groundwork.index.embedder import Embedder
from groundwork.ingest.chunking.base import make_chunk, token_windows
from groundwork.text import SENTENCE_SPLITTER, split_sentences
from groundwork.types import Chunk, Document, Section


class SemanticChunker:
    def __init__(self, embedder: Embedder, size: int, percentile: float = 20.0) -> None:
        if not 0 < percentile < 100:
            raise ConfigError("percentile must be in (0, 100)")
        self.embedder, self.size, self.percentile = embedder, size, percentile

    @property
    def fingerprint(self) -> str:
        return f"semantic:{self.size}:{self.percentile}:{SENTENCE_SPLITTER}:{self.embedder.model_id}"

    def _sentences(self, document: Document) -> list[tuple[str, int, Section]]:
        out = []
        for sec in document.sections:
            for sent in split_sentences(sec.text):
                n = self.embedder.count_tokens(sent)
                if n > self.size:  # one over-long "sentence" (a table, a list): cut it into windows
                    out.extend(
                        (w, self.embedder.count_tokens(w), sec)
                        for w in token_windows(self.embedder, sent, self.size, 0)
                    )
                else:
                    out.append((sent, n, sec))
        return out

    def chunk(self, document: Document) -> list[Chunk]:
        sents = self._sentences(document)
        if not sents:
            return []
        vecs = self.embedder.embed([s for s, _, _ in sents], token_counts=[n for _, n, _ in sents])
        sims = np.sum(vecs[:-1] * vecs[1:], axis=1) if len(sents) > 1 else np.zeros(0)
        cut = float(np.percentile(sims, self.percentile)) if len(sims) else 0.0
        chunks: list[Chunk] = []
        cur: list[str] = []
        cur_n, cur_sec = 0, sents[0][2]
        for i, (sent, n, sec) in enumerate(sents):
            boundary = bool(cur) and (sec is not cur_sec or cur_n + n > self.size or sims[i - 1] < cut)
            if boundary:
                chunks.append(make_chunk(document, len(chunks), " ".join(cur), cur_sec, tokens=cur_n))
                cur, cur_n = [], 0
            if not cur:
                cur_sec = sec
            cur.append(sent)
            cur_n += n
        if cur:
            chunks.append(make_chunk(document, len(chunks), " ".join(cur), cur_sec, tokens=cur_n))
        return chunks
