"""Retrieval evaluation: run every query of a dataset and report the field's standard metrics.

Document-level datasets (BEIR, Groundwork eval sets) are measured as BEIR defines them, on a ranked
list of documents: ``kb.search_documents`` ranks ``top_k`` distinct documents, each scored by its best
chunk (``group_by="document"``, the default). ``group_by="chunk"`` measures the older way: the
documents of the top ``top_k`` chunks in order of first occurrence, often fewer than ``top_k`` because
a long document takes several places. ``distinct_docs`` is the mean length of the ranked list.

MultiHop-RAG always ranks chunks: its official metrics (the paper's chunk-level containment, see
metrics.multihop_metrics) take the names hits@4, hits@10, mrr@10 and map@10, and the document-level
figures of the chunks' documents are kept as ``article_*``.

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
    docs = kb.search_documents(q.question, mode=mode, top_k=top_k, filter=q.filter, access=q.access)
    return [d.doc_id for d in docs], [d.passages[0].chunk.text for d in docs]


def _rank_chunks(kb: KnowledgeBase, q: EvalQuery, mode: str, top_k: int) -> tuple[list[str], list[str]]:
    """The documents of the top ``top_k`` chunks (in order of first occurrence) and the chunks' texts."""
    hits = kb.search(q.question, mode=mode, top_k=top_k, filter=q.filter, access=q.access)
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
    dataset: EvalDataset, kb: KnowledgeBase, mode: str | None = None, top_k: int = 10, group_by: str | None = None
) -> dict[str, Any]:
    """Figures averaged over the queries that have judgments (null queries are left out).

    The top ``top_k`` documents (chunks for MultiHop-RAG or ``group_by="chunk"``) come from exactly
    the search a user runs (``kb.search_documents`` / ``kb.search`` with ``top_k``) on a new question
    (``new_questions``), timed for ``latency_ms_p50`` / ``latency_ms_p95`` (ms, query embedding
    included); a second, deeper search supplies the 100 documents for recall@100. Where the mode
    embeds the question and the embedding cache is on, the first search is timed again with the
    question's vector cached: ``latency_cached_ms_p50`` / ``_p95`` (the same question asked again).
    ``group_by``: "document" or "chunk"; default "document", and "chunk" for MultiHop-RAG. Raises
    RequestError for another value, or "document" on MultiHop-RAG.
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
    cached: list[float] = []
    repeat = mode != "bm25" and kb.settings.embedder.cache
    kb.search(WARM_UP, mode=mode, top_k=top_k)  # builds the parts the copy below shares (reranker, ...)
    with new_questions(kb) as fresh:
        fresh.search(WARM_UP, mode=mode, top_k=top_k)
        for q in dataset.queries:
            if not q.qrels:
                continue
            t0 = time.perf_counter()
            top, texts = rank(fresh, q, mode, top_k)
            latencies.append((time.perf_counter() - t0) * 1000)
            if repeat:
                t0 = time.perf_counter()
                rank(fresh, q, mode, top_k)
                cached.append((time.perf_counter() - t0) * 1000)
            deep, _ = rank(fresh, q, mode, deep_k)
            row = _doc_metrics(deep, q, top)
            if multihop:
                row = {**{f"article_{k}": v for k, v in row.items()}, **row}
                row.update(multihop_metrics(texts, q.facts))
            row["distinct_docs"] = float(len(top))
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
        "group_by": group_by,
        "group_score": s.retrieval.group_score if group_by == "document" else None,
        "chunker": s.chunking.strategy,
        "chunk_tokens": s.chunking.chunk_tokens,
        "chunks": kb.count_chunks(),
        "candidates": s.retrieval.candidates,
        "rrf_k": s.retrieval.rrf_k,
        "fusion": s.retrieval.fusion,
        "bm25_weight": s.retrieval.bm25_weight,
        "dense_weight": s.retrieval.dense_weight,
        "long_query_bm25_weight": s.retrieval.long_query_bm25_weight,
        "embedder": kb.embedder.model_id,
    }
    return out
