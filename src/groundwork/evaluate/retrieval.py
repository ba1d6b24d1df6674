"""Retrieval evaluation: run every query of a dataset and report the field's standard metrics.

Document-level datasets (BEIR, Groundwork eval sets) are measured as BEIR defines them, on a ranked
list of documents: ``kb.search_documents`` ranks ``top_k`` distinct documents, each scored by its best
chunk (``group_by="document"``, the default). ``group_by="chunk"`` measures the older way: the
documents of the top ``top_k`` chunks in order of first occurrence, often fewer than ``top_k`` because
a long document takes several places. ``distinct_docs`` is the mean length of the ranked list.

MultiHop-RAG always ranks chunks: its official metrics (the paper's chunk-level containment, see
metrics.multihop_metrics) take the names hits@4, hits@10, mrr@10 and map@10, and the document-level
figures of the chunks' documents are kept as ``article_*``.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from typing import Any

from groundwork.errors import RequestError
from groundwork.evaluate.datasets import EvalDataset, EvalQuery
from groundwork.evaluate.metrics import map_at_k, mrr_at_k, multihop_metrics, ndcg_at_k, recall_at_k
from groundwork.kb import KnowledgeBase

DEEP = 100  # documents ranked for recall@100
GROUPINGS = ("chunk", "document")


def _unique_docs(doc_ids: list[str]) -> list[str]:
    return list(dict.fromkeys(doc_ids))


def _rank_documents(kb: KnowledgeBase, q: EvalQuery, mode: str, top_k: int) -> tuple[list[str], list[str]]:
    """``top_k`` distinct document ids, best first, and the text of each one's best passage."""
    docs = kb.search_documents(q.question, mode=mode, top_k=top_k, filter=q.filter)
    return [d.doc_id for d in docs], [d.passages[0].chunk.text for d in docs]


def _rank_chunks(kb: KnowledgeBase, q: EvalQuery, mode: str, top_k: int) -> tuple[list[str], list[str]]:
    """The documents of the top ``top_k`` chunks (in order of first occurrence) and the chunks' texts."""
    hits = kb.search(q.question, mode=mode, top_k=top_k, filter=q.filter)
    return _unique_docs([h.chunk.doc_id for h in hits]), [h.chunk.text for h in hits]


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
    dataset: EvalDataset, kb: KnowledgeBase, mode: str | None = None, top_k: int = 10, group_by: str | None = None
) -> dict[str, Any]:
    """Figures averaged over the queries that have judgments (null queries are left out).

    The top ``top_k`` documents (chunks for MultiHop-RAG or ``group_by="chunk"``) come from exactly
    the search a user runs (``kb.search_documents`` / ``kb.search`` with ``top_k``), timed for the
    latency figures (ms, query embedding included); a second, deeper search supplies the 100
    documents for recall@100. ``group_by``: "document" or "chunk"; default "document", and "chunk"
    for MultiHop-RAG. Raises RequestError for another value, or "document" on MultiHop-RAG.
    """
    mode = mode or kb.settings.retrieval.mode
    multihop = dataset.fmt == "multihop-rag"
    group_by = group_by or ("chunk" if multihop else "document")
    if group_by not in GROUPINGS:
        raise RequestError(f"group_by must be one of {', '.join(GROUPINGS)}, not {group_by!r}")
    if multihop and group_by == "document":
        raise RequestError("MultiHop-RAG's metrics are chunk-level: drop --group-by document for this dataset")
    rank = _rank_documents if group_by == "document" else _rank_chunks
    deep_k = DEEP if group_by == "document" else 3 * DEEP  # chunks: about 100 documents' worth
    rows: list[dict[str, float]] = []
    by_type: dict[str, list[dict[str, float]]] = defaultdict(list)
    latencies: list[float] = []
    for q in dataset.queries:
        if not q.qrels:
            continue
        t0 = time.perf_counter()
        top, texts = rank(kb, q, mode, top_k)
        latencies.append((time.perf_counter() - t0) * 1000)
        deep, _ = rank(kb, q, mode, deep_k)
        row = _doc_metrics(deep, q, top)
        if multihop:
            row = {**{f"article_{k}": v for k, v in row.items()}, **row}
            row.update(multihop_metrics(texts, q.facts))
        row["distinct_docs"] = float(len(top))
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
        "group_by": group_by,
        "group_score": s.retrieval.group_score if group_by == "document" else None,
        "chunker": s.chunking.strategy,
        "chunk_tokens": s.chunking.chunk_tokens,
        "chunks": kb.count_chunks(),
        "candidates": s.retrieval.candidates,
        "rrf_k": s.retrieval.rrf_k,
        "embedder": kb.embedder.model_id,
    }
    return out
