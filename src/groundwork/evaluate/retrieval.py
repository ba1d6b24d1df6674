"""Retrieval evaluation: run every query of a dataset and report the field's standard metrics.

Document-level metrics (nDCG@10, recall@10, recall@100, MRR@10, MAP@10, hits@k) rank documents by
their best chunk (first occurrence in the chunk ranking). MultiHop-RAG additionally gets the paper's
chunk-level containment metrics (see metrics.multihop_metrics), which then take the names hits@4,
hits@10, mrr@10 and map@10, with the article-level figures kept as ``article_*``.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from typing import Any

from groundwork.evaluate.datasets import EvalDataset, EvalQuery
from groundwork.evaluate.metrics import map_at_k, mrr_at_k, multihop_metrics, ndcg_at_k, recall_at_k
from groundwork.kb import KnowledgeBase

DEEP = 100  # documents ranked for recall@100


def _unique_docs(doc_ids: list[str]) -> list[str]:
    return list(dict.fromkeys(doc_ids))


def _doc_metrics(ranking: list[str], q: EvalQuery, top10: list[str]) -> dict[str, float]:
    return {
        "ndcg@10": ndcg_at_k(top10, q.qrels, 10),
        "recall@10": recall_at_k(top10, q.qrels, 10),
        "recall@100": recall_at_k(ranking, q.qrels, DEEP),
        "mrr@10": mrr_at_k(top10, q.qrels, 10),
        "map@10": map_at_k(top10, q.qrels, 10),
        "hits@4": float(any(q.qrels.get(d, 0) > 0 for d in top10[:4])),
        "hits@10": float(any(q.qrels.get(d, 0) > 0 for d in top10[:10])),
    }


def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.fmean(r[k] for r in rows) for k in rows[0]} if rows else {}


def evaluate_retrieval(
    dataset: EvalDataset, kb: KnowledgeBase, mode: str | None = None, top_k: int = 10
) -> dict[str, Any]:
    """Figures averaged over the queries that have judgments (null queries are left out).

    The top ``top_k`` chunks come from exactly the search a user runs (``kb.search(q, top_k=top_k)``),
    timed for the latency figures (ms, query embedding included); a second, deeper search supplies
    the 100 documents for recall@100.
    """
    mode = mode or kb.settings.retrieval.mode
    rows: list[dict[str, float]] = []
    by_type: dict[str, list[dict[str, float]]] = defaultdict(list)
    latencies: list[float] = []
    multihop = dataset.fmt == "multihop-rag"
    for q in dataset.queries:
        if not q.qrels:
            continue
        t0 = time.perf_counter()
        hits = kb.search(q.question, mode=mode, top_k=top_k, filter=q.filter)
        latencies.append((time.perf_counter() - t0) * 1000)
        deep = kb.search(q.question, mode=mode, top_k=3 * DEEP, filter=q.filter)
        top10 = _unique_docs([h.chunk.doc_id for h in hits])
        row = _doc_metrics(_unique_docs([h.chunk.doc_id for h in deep]), q, top10)
        if multihop:
            row = {**{f"article_{k}": v for k, v in row.items()}, **row}
            row.update(multihop_metrics([h.chunk.text for h in hits], q.facts))
        rows.append(row)
        by_type[q.qtype].append(row)
    out: dict[str, Any] = _mean(rows)
    out["latency_ms_p50"] = statistics.median(latencies) if latencies else 0.0
    out["latency_ms_p95"] = statistics.quantiles(latencies, n=20)[18] if len(latencies) >= 2 else out["latency_ms_p50"]
    if len(by_type) > 1 or multihop:
        out["per_type"] = {t: {"queries": len(r), **_mean(r)} for t, r in sorted(by_type.items())}
    s = kb.settings
    out["queries"] = len(rows)
    out["config"] = {
        "dataset": dataset.name,
        "mode": mode,
        "top_k": top_k,
        "chunker": s.chunking.strategy,
        "chunk_tokens": s.chunking.chunk_tokens,
        "chunks": kb.count_chunks(),
        "candidates": s.retrieval.candidates,
        "rrf_k": s.retrieval.rrf_k,
        "embedder": kb.embedder.model_id,
    }
    return out
