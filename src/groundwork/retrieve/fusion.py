"""Rank fusion of several ranked lists of hits into one.

- Reciprocal Rank Fusion (Cormack, Clarke & Buettcher 2009, "Reciprocal rank fusion outperforms
  Condorcet and individual rank learning methods", SIGIR): score(d) = sum_i w_i / (k + rank_i(d)),
  k = 60 in the paper. Uses ranks only, so BM25 and cosine scores need no calibration.
- Convex combination of min-max normalised scores (Bruch, Gai & Ingber 2023, "An analysis of fusion
  functions for hybrid retrieval"): score(d) = sum_i w_i * (s_i(d) - min_i) / (max_i - min_i);
  a hit missing from a list gets 0 from it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from groundwork.types import SearchHit


def _merge(lists: Mapping[str, Sequence[SearchHit]], contrib) -> list[SearchHit]:
    fused: dict[str, SearchHit] = {}
    totals: dict[str, float] = {}
    for name, hits in lists.items():
        for value, hit in zip(contrib(name, hits), hits):
            cid = hit.chunk.chunk_id
            if cid not in fused:
                fused[cid] = replace(hit, scores={})
                totals[cid] = 0.0
            fused[cid].scores.update(hit.scores)
            totals[cid] += value
    order = sorted(fused, key=lambda c: (-totals[c], c))
    return [replace(fused[c], score=totals[c], rank=i) for i, c in enumerate(order, 1)]


def rrf_fusion(
    lists: Mapping[str, Sequence[SearchHit]], k: int = 60, weights: Mapping[str, float] | None = None
) -> list[SearchHit]:
    """Fuse ranked lists (name -> hits best first) by RRF; ties broken by chunk id for determinism."""
    w = weights or {}
    return _merge(lists, lambda name, hits: [w.get(name, 1.0) / (k + r) for r in range(1, len(hits) + 1)])


def convex_fusion(
    lists: Mapping[str, Sequence[SearchHit]], weights: Mapping[str, float] | None = None
) -> list[SearchHit]:
    """Fuse by a weighted sum of per-list min-max normalised scores (weights default to 1 each)."""
    w = weights or {}

    def norm(name: str, hits: Sequence[SearchHit]) -> list[float]:
        if not hits:
            return []
        scores = [h.score for h in hits]
        lo, hi = min(scores), max(scores)
        return [w.get(name, 1.0) * ((s - lo) / (hi - lo) if hi > lo else 1.0) for s in scores]

    return _merge(lists, norm)
