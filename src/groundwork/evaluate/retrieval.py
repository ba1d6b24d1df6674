"""Retrieval evaluation: run every query of a dataset and report the field's standard metrics.

Document-level metrics (nDCG@10, recall@10, recall@100, MRR@10, MAP@10, hits@k) rank documents by
their best chunk (first occurrence in the chunk ranking). MultiHop-RAG additionally gets the paper's
chunk-level containment metrics (see metrics.multihop_metrics), which then take the names hits@4,
hits@10, mrr@10 and map@10, with the article-level figures kept as ``article_*``.

Latency is what a user waits for with a question nobody asked before (see ``new_questions``): the
question is embedded inside the timed search, whatever earlier runs left in the embedding cache.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
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


def percentiles(latencies: list[float], prefix: str = "latency") -> dict[str, float]:
    """{prefix_ms_p50, prefix_ms_p95} of ``latencies`` (ms); {} when there are none."""
    if not latencies:
        return {}
    p50 = statistics.median(latencies)
    p95 = statistics.quantiles(latencies, n=20)[18] if len(latencies) >= 2 else p50
    return {f"{prefix}_ms_p50": p50, f"{prefix}_ms_p95": p95}


@contextmanager
def new_questions(kb: KnowledgeBase) -> Iterator[KnowledgeBase]:
    """``kb`` as a user with a question nobody asked before meets it: the same index and parts, with
    an embedding cache of its own that starts empty (in a temporary folder, removed on exit).

    Each question, and each sub-question, is looked up, embedded by the model and written to that
    cache, as a new question is; asked a second time it is served from the cache. Timing on ``kb``
    itself would time whatever earlier runs left in its cache (``eval compare`` runs every mode on
    one cache, so hybrid was timed without embedding its questions). With ``embedder.cache`` off
    nothing is cached, here as there."""
    with tempfile.TemporaryDirectory(prefix="groundwork-new-questions-") as tmp:
        yield KnowledgeBase(components=kb.components.with_embedding_cache(Path(tmp)))


WARM_UP = "warm-up question"  # loads the model, opens tables and indexes before anything is timed


def evaluate_retrieval(
    dataset: EvalDataset, kb: KnowledgeBase, mode: str | None = None, top_k: int = 10
) -> dict[str, Any]:
    """Figures averaged over the queries that have judgments (null queries are left out).

    The top ``top_k`` chunks come from exactly the search a user runs (``kb.search(q, top_k=top_k)``)
    on a new question (``new_questions``), timed for ``latency_ms_p50`` / ``latency_ms_p95`` (ms, query
    embedding included); a second, deeper search supplies the 100 documents for recall@100. Where
    the mode embeds the question and the embedding cache is on, the first search is timed again with
    the question's vector cached: ``latency_cached_ms_p50`` / ``_p95`` (the same question asked again).
    """
    mode = mode or kb.settings.retrieval.mode
    rows: list[dict[str, float]] = []
    by_type: dict[str, list[dict[str, float]]] = defaultdict(list)
    latencies: list[float] = []
    cached: list[float] = []
    repeat = mode != "bm25" and kb.settings.embedder.cache
    multihop = dataset.fmt == "multihop-rag"
    kb.search(WARM_UP, mode=mode, top_k=top_k)  # builds the parts the copy below shares (reranker, ...)
    with new_questions(kb) as fresh:
        fresh.search(WARM_UP, mode=mode, top_k=top_k)
        for q in dataset.queries:
            if not q.qrels:
                continue
            t0 = time.perf_counter()
            hits = fresh.search(q.question, mode=mode, top_k=top_k, filter=q.filter)
            latencies.append((time.perf_counter() - t0) * 1000)
            if repeat:
                t0 = time.perf_counter()
                fresh.search(q.question, mode=mode, top_k=top_k, filter=q.filter)
                cached.append((time.perf_counter() - t0) * 1000)
            deep = fresh.search(q.question, mode=mode, top_k=3 * DEEP, filter=q.filter)
            top10 = _unique_docs([h.chunk.doc_id for h in hits])
            row = _doc_metrics(_unique_docs([h.chunk.doc_id for h in deep]), q, top10)
            if multihop:
                row = {**{f"article_{k}": v for k, v in row.items()}, **row}
                row.update(multihop_metrics([h.chunk.text for h in hits], q.facts))
            rows.append(row)
            by_type[q.qtype].append(row)
    out: dict[str, Any] = _mean(rows)
    out.update(percentiles(latencies) or {"latency_ms_p50": 0.0, "latency_ms_p95": 0.0})
    out.update(percentiles(cached, "latency_cached"))
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
