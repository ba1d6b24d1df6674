"""Rank fusion of several ranked lists of hits into one.

Every method maps each list's scores (or ranks) to per-list contributions, weights them and sums
them per chunk; a chunk missing from a list gets 0 from it. Ties are broken by chunk id.

- ``rrf``: Reciprocal Rank Fusion (Cormack, Clarke & Buettcher 2009, "Reciprocal rank fusion
  outperforms Condorcet and individual rank learning methods", SIGIR): w_i / (k + rank_i(d)),
  k = 60 in the paper. Uses ranks only, so BM25 and cosine scores need no calibration.
- ``convex``: convex combination of min-max normalised scores (Bruch, Gai & Ingber 2023, "An analysis
  of fusion functions for hybrid retrieval", ACM TOIS): w_i * (s - min_i) / (max_i - min_i).
- ``zscore``: CombSUM of standardised scores (Montague & Aslam 2001, "Relevance score normalization
  for metasearch", CIKM: "Z-score"): w_i * (s - mean_i) / std_i, shifted so that the list's lowest
  score contributes 0 (a chunk the list did not return contributes what its last one does).
- ``dbsf``: distribution-based score fusion (Mazzeschi 2023, "Distribution-based score fusion",
  as implemented in Qdrant's hybrid queries): min-max with the bounds mean_i ± 3 std_i instead of the
  list's own minimum and maximum, so one outlying top score does not squash the rest of its list.
- ``combmnz``: CombMNZ (Fox & Shaw 1994, "Combination of multiple searches", TREC-2): the convex sum
  multiplied by the number of lists that returned the chunk.
- ``adaptive``: convex, with each list's weight scaled per query by how much its best score stands
  out from its next nine (1 - mean of min-max scores at ranks 2..10): a score-gap query performance
  predictor in the spirit of Shtok et al. 2012 ("Predicting query performance by query-drift
  estimation", ACM TOIS), so the list that is sure of its top hits counts more for that query.

``length_weights`` makes the weights query-adaptive before fusion by the question's length, a
pre-retrieval query performance predictor (He & Ounis 2004, "Inferring query performance using
pre-retrieval predictors", SPIRE): every further word is more evidence for BM25, while a small
mean-pooled encoder trained on short queries (all-MiniLM-L6-v2: MS MARCO-style questions of a few
words) blurs a long, many-entity question into one vector.

``fuse_scores`` works on (chunk id, score) pairs; ``fuse`` on SearchHit lists (the retriever's path).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from groundwork.types import SearchHit

FUSIONS = ("rrf", "convex", "zscore", "dbsf", "combmnz", "adaptive")
Ranked = Sequence[tuple[str, float]]  # (chunk id, score), best first


def _minmax(scores: list[float], lo: float, hi: float) -> list[float]:
    return [(s - lo) / (hi - lo) if hi > lo else 1.0 for s in scores]


def _contrib_convex(scores: list[float]) -> list[float]:
    return _minmax(scores, min(scores), max(scores))


def _contrib_zscore(scores: list[float]) -> list[float]:
    sd = statistics.pstdev(scores)
    if sd == 0:
        return [1.0] * len(scores)
    lo = min(scores)
    return [(s - lo) / sd for s in scores]


def _contrib_dbsf(scores: list[float]) -> list[float]:
    mean, sd = statistics.fmean(scores), statistics.pstdev(scores)
    return _minmax(scores, mean - 3 * sd, mean + 3 * sd)


def _confidence(scores: list[float]) -> float:
    """1 - the mean min-max score of ranks 2..10: near 1 when the top hit stands out, 0 when flat."""
    norm = _contrib_convex(scores)
    rest = norm[1:10]
    return 1.0 - statistics.fmean(rest) if rest else 1.0


_SCORE_NORMS: dict[str, Callable[[list[float]], list[float]]] = {
    "convex": _contrib_convex,
    "zscore": _contrib_zscore,
    "dbsf": _contrib_dbsf,
    "combmnz": _contrib_convex,
    "adaptive": _contrib_convex,
}


def length_weights(
    bm25_weight: float, dense_weight: float, words: int, long_bm25_share: float | None, short: int, long: int
) -> dict[str, float]:
    """{"bm25", "dense"} weights for a question of ``words`` words. With ``long_bm25_share`` None they
    are the given ones; else BM25's share of their sum moves linearly from its given share at
    ``short`` words (and fewer) to ``long_bm25_share`` at ``long`` words (and more), the sum kept.
    A list weighted 0 is left off for every question."""
    total = bm25_weight + dense_weight
    if long_bm25_share is None or bm25_weight <= 0 or dense_weight <= 0:  # a list weighted 0 stays off
        return {"bm25": bm25_weight, "dense": dense_weight}
    base = bm25_weight / total
    x = min(1.0, max(0.0, (words - short) / (long - short))) if long > short else float(words >= long)
    share = base + x * (long_bm25_share - base)
    return {"bm25": total * share, "dense": total * (1 - share)}


def fuse_scores(
    lists: Mapping[str, Ranked],
    method: str = "convex",
    weights: Mapping[str, float] | None = None,
    k: int = 60,
) -> list[tuple[str, float]]:
    """Fuse ranked (chunk id, score) lists, name -> list best first, by ``method`` (one of FUSIONS),
    each list weighted by ``weights[name]`` (default 1). Returns (chunk id, fused score), best first.
    Raises ValueError for an unknown method."""
    if method not in FUSIONS:
        raise ValueError(f"fusion must be one of {', '.join(FUSIONS)}, not {method!r}")
    w = dict(weights or {})
    if method == "adaptive":
        conf = {n: _confidence([s for _, s in r]) for n, r in lists.items() if r}
        w = {n: w.get(n, 1.0) * c for n, c in conf.items()}
    totals: dict[str, float] = {}
    seen: dict[str, int] = {}
    for name, ranked in lists.items():
        if not ranked:
            continue
        if method == "rrf":
            values = [1.0 / (k + r) for r in range(1, len(ranked) + 1)]
        else:
            values = _SCORE_NORMS[method]([s for _, s in ranked])
        weight = w.get(name, 1.0)
        for (cid, _), v in zip(ranked, values):
            totals[cid] = totals.get(cid, 0.0) + weight * v
            seen[cid] = seen.get(cid, 0) + 1
    if method == "combmnz":
        totals = {c: t * seen[c] for c, t in totals.items()}
    return sorted(totals.items(), key=lambda item: (-item[1], item[0]))


def fuse(
    lists: Mapping[str, Sequence[SearchHit]],
    method: str = "convex",
    weights: Mapping[str, float] | None = None,
    k: int = 60,
) -> list[SearchHit]:
    """Fuse SearchHit lists (name -> hits best first) by ``method``; each fused hit keeps every
    list's own score in ``scores`` and gets the fused score and its new rank. Raises ValueError for
    an unknown method."""
    merged: dict[str, SearchHit] = {}
    for hits in lists.values():
        for hit in hits:
            cid = hit.chunk.chunk_id
            if cid not in merged:
                merged[cid] = replace(hit, scores={})
            merged[cid].scores.update(hit.scores)
    ranked = {n: [(h.chunk.chunk_id, h.score) for h in hits] for n, hits in lists.items()}
    fused = fuse_scores(ranked, method, weights, k)
    return [replace(merged[c], score=s, rank=i) for i, (c, s) in enumerate(fused, 1)]


def rrf_fusion(
    lists: Mapping[str, Sequence[SearchHit]], k: int = 60, weights: Mapping[str, float] | None = None
) -> list[SearchHit]:
    """Fuse ranked lists (name -> hits best first) by RRF; ties broken by chunk id for determinism."""
    return fuse(lists, "rrf", weights, k)


def convex_fusion(
    lists: Mapping[str, Sequence[SearchHit]], weights: Mapping[str, float] | None = None
) -> list[SearchHit]:
    """Fuse by a weighted sum of per-list min-max normalised scores (weights default to 1 each)."""
    return fuse(lists, "convex", weights)
