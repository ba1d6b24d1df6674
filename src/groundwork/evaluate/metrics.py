"""Retrieval metrics over ranked document ids, with trec_eval semantics (as pytrec_eval computes them,
so figures are comparable with BEIR's), and MultiHop-RAG's containment metrics.

All functions take one query's ranking (best first) and judgments; averaging is the caller's job.
Relevance grades are ints; a grade > 0 is relevant.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


def ndcg_at_k(ranking: Sequence[str], qrels: Mapping[str, int], k: int = 10) -> float:
    """nDCG@k with linear gains (Järvelin & Kekäläinen 2002; trec_eval's ndcg_cut): DCG = sum of
    rel_i / log2(i + 1) over the top k, divided by the DCG of the ideal ordering of all judged docs."""
    dcg = sum(qrels.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranking[:k]) if qrels.get(d, 0) > 0)
    ideal = sorted((g for g in qrels.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranking: Sequence[str], qrels: Mapping[str, int], k: int) -> float:
    """Share of the relevant documents found in the top k."""
    relevant = {d for d, g in qrels.items() if g > 0}
    return len(relevant & set(ranking[:k])) / len(relevant) if relevant else 0.0


def mrr_at_k(ranking: Sequence[str], qrels: Mapping[str, int], k: int = 10) -> float:
    """Reciprocal rank of the first relevant document within the top k, else 0."""
    for i, d in enumerate(ranking[:k], 1):
        if qrels.get(d, 0) > 0:
            return 1.0 / i
    return 0.0


def map_at_k(ranking: Sequence[str], qrels: Mapping[str, int], k: int = 10) -> float:
    """Average precision cut at k (trec_eval's map_cut): the sum of precision@i at each relevant
    document within the top k, divided by the number of relevant documents."""
    relevant = {d for d, g in qrels.items() if g > 0}
    if not relevant:
        return 0.0
    found, total = 0, 0.0
    for i, d in enumerate(ranking[:k], 1):
        if d in relevant:
            found += 1
            total += found / i
    return total / len(relevant)


def _squash(text: str) -> str:
    return text.replace(" ", "").replace("\n", "")


def multihop_metrics(retrieved_texts: Sequence[str], facts: Sequence[str]) -> dict[str, float]:
    """MultiHop-RAG's retrieval metrics for one query (Tang & Yang 2024, the official
    retrieval_evaluate.py): a retrieved chunk is relevant when a gold evidence fact, with spaces and
    newlines removed, is contained in the chunk's text, likewise stripped. Over the top 10:
    hits@4 / hits@10 (a relevant chunk in the top 4 / 10), mrr@10, and map@10, where each relevant
    chunk at rank r adds (facts it covers for the first time) / r, and the sum is divided by
    min(#facts, 10)."""
    gold = [_squash(f) for f in facts]
    seen: set[str] = set()
    first, ap, hit4 = None, 0.0, False
    for rank, text in enumerate(retrieved_texts[:10], 1):
        t = _squash(text)
        covered = [g for g in gold if g in t]
        if not covered:
            continue
        first = first or rank
        hit4 = hit4 or rank <= 4
        new = [g for g in dict.fromkeys(covered) if g not in seen]
        seen.update(new)
        ap += len(new) / rank
    return {
        "hits@4": float(hit4),
        "hits@10": float(first is not None),
        "mrr@10": 1.0 / first if first else 0.0,
        "map@10": ap / min(len(gold), 10) if gold else 0.0,
    }
