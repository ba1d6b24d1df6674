"""Context assembly: from ranked hits to numbered context chunks that fit a token budget.

Steps, in order: parent text replaces child text (hierarchical chunks; one parent once); near-duplicates
are dropped (cosine similarity of chunk vectors >= ``dedup_similarity``, or identical text); chunks are
added best first while the budget (tokens, counted with the embedder's tokenizer) allows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from groundwork.types import ContextChunk, SearchHit


def assemble_context(
    hits: Sequence[SearchHit], count_tokens: Callable[[str], int], budget_tokens: int, dedup_similarity: float = 0.95
) -> list[ContextChunk]:
    """Numbered context chunks (n from 1), best first, within ``budget_tokens`` in total."""
    out: list[ContextChunk] = []
    kept_vectors: list[np.ndarray] = []
    seen_text: set[str] = set()
    seen_parents: set[str] = set()
    used = 0
    for hit in hits:
        c = hit.chunk
        if c.parent_id:
            if c.parent_id in seen_parents:
                continue
            seen_parents.add(c.parent_id)
        text = c.parent_text or c.text
        key = " ".join(text.split()).lower()
        if key in seen_text:
            continue
        if c.vector is not None and kept_vectors and dedup_similarity < 1.0:
            v = np.asarray(c.vector, dtype=np.float32)
            if float(np.max(np.stack(kept_vectors) @ v)) >= dedup_similarity:
                continue
        n_tokens = count_tokens(text)
        if used + n_tokens > budget_tokens:
            continue  # a smaller chunk further down may still fit
        seen_text.add(key)
        if c.vector is not None:
            kept_vectors.append(np.asarray(c.vector, dtype=np.float32))
        used += n_tokens
        out.append(ContextChunk(n=len(out) + 1, hit=hit, text=text, tokens=n_tokens))
    return out
