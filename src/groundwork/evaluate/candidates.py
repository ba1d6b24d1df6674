"""Candidate lists of one evaluation index, collected once, for searching query-time settings offline.

``collect_candidates`` embeds every judged question once (one batched encoder call, through the
embedding cache) and keeps, per question, the BM25 and the dense list ``depth`` chunks deep as
(chunk id, score) pairs, plus each chunk's document id and text. ``rank`` then reproduces what a
setting of mode, fusion, weights and candidates would rank, with the same fusion code the retriever
runs (retrieve.fusion.fuse_scores) and no further search or embedding: a list cut to ``candidates``
is what a search ``candidates`` deep returns (the first hits of a deeper search), and documents are
grouped by their best chunk as ``search_documents`` does (``group_score = "max"``).
``query_metrics`` scores a ranking with the metrics `groundwork eval retrieval` reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from groundwork.evaluate.datasets import EvalDataset, EvalQuery
from groundwork.evaluate.metrics import map_at_k, mrr_at_k, multihop_metrics, ndcg_at_k, recall_at_k
from groundwork.filters import parse_filter
from groundwork.kb import KnowledgeBase
from groundwork.retrieve.fusion import fuse_scores, length_weights
from groundwork.types import Chunk

Ranked = list[tuple[str, float]]


@dataclass(frozen=True)
class Trial:
    """One query-time setting: what ``retrieval.*`` keys it stands for are in ``settings()``."""

    mode: str = "hybrid"
    fusion: str = "convex"
    bm25_weight: float = 0.7
    dense_weight: float = 0.3
    candidates: int = 100
    rrf_k: int = 60
    long_bm25: float | None = None  # retrieval.long_query_bm25_weight
    short_words: int = 15
    long_words: int = 40
    rerank: bool = False

    def settings(self) -> dict[str, Any]:
        """Dotted setting keys -> values (hybrid-only keys left out of bm25 / dense)."""
        out: dict[str, Any] = {"retrieval.mode": self.mode}
        if self.mode == "hybrid":
            out.update(
                {
                    "retrieval.fusion": self.fusion,
                    "retrieval.bm25_weight": self.bm25_weight,
                    "retrieval.dense_weight": self.dense_weight,
                    "retrieval.candidates": self.candidates,
                }
            )
            if self.fusion == "rrf":
                out["retrieval.rrf_k"] = self.rrf_k
            if self.long_bm25 is not None:
                out["retrieval.long_query_bm25_weight"] = self.long_bm25
                out["retrieval.short_query_words"] = self.short_words
                out["retrieval.long_query_words"] = self.long_words
        return out

    def label(self) -> str:
        if self.mode != "hybrid":
            return self.mode + (" + rerank" if self.rerank else "")
        w = f"{self.bm25_weight:g}/{self.dense_weight:g}"
        k = f" k={self.rrf_k}" if self.fusion == "rrf" else ""
        if self.long_bm25 is not None:
            w += f" -> {self.long_bm25:g} at {self.long_words} words"
        return f"hybrid {self.fusion}{k} {w} c={self.candidates}" + (" + rerank" if self.rerank else "")


@dataclass
class CandidateLists:
    """Per judged question (``queries[i]``): ``bm25[i]`` and ``dense[i]``, best first, ``depth`` deep;
    ``vectors`` (n, dim) float32 the question embeddings; ``chunks`` chunk id -> Chunk (no vector)."""

    dataset: EvalDataset
    queries: list[EvalQuery]
    bm25: list[Ranked]
    dense: list[Ranked]
    vectors: np.ndarray
    chunks: dict[str, Chunk] = field(default_factory=dict)
    depth: int = 100

    @property
    def multihop(self) -> bool:
        return self.dataset.fmt == "multihop-rag"


def collect_candidates(dataset: EvalDataset, kb: KnowledgeBase, depth: int = 100) -> CandidateLists:
    """Search every judged question of ``dataset`` once per side, ``depth`` chunks deep (see module).
    Raises FilterError for a question whose filter is invalid."""
    queries = [q for q in dataset.queries if q.qrels]
    vectors = kb.embedder.embed([q.question for q in queries]) if queries else np.zeros((0, 0), np.float32)
    store = kb.store
    out = CandidateLists(dataset, queries, [], [], vectors, depth=depth)
    for q, vec in zip(queries, vectors):
        flt = parse_filter(q.filter) if q.filter else None
        for side, hits in (
            ("bm25", store.keyword_search(q.question, depth, flt)),
            ("dense", store.vector_search(vec, depth, flt)),
        ):
            getattr(out, side).append([(h.chunk.chunk_id, h.score) for h in hits])
            for h in hits:
                if h.chunk.chunk_id not in out.chunks:
                    h.chunk.vector = None  # the ranking needs ids and texts only
                    out.chunks[h.chunk.chunk_id] = h.chunk
    return out


def fused(c: CandidateLists, i: int, t: Trial) -> Ranked:
    """Question ``i``'s chunk ranking under ``t`` (before any reranker)."""
    if t.mode == "bm25":
        return c.bm25[i]
    if t.mode == "dense":
        return c.dense[i]
    lists = {"bm25": c.bm25[i][: t.candidates], "dense": c.dense[i][: t.candidates]}
    words = len(c.queries[i].question.split())
    weights = length_weights(t.bm25_weight, t.dense_weight, words, t.long_bm25, t.short_words, t.long_words)
    return fuse_scores(lists, t.fusion, weights, t.rrf_k)


def documents(c: CandidateLists, ranking: Sequence[str], top_k: int = 10) -> list[str]:
    """The first ``top_k`` distinct documents of a chunk ranking (each placed by its best chunk)."""
    out: dict[str, None] = {}
    for cid in ranking:
        out.setdefault(c.chunks[cid].doc_id, None)
        if len(out) == top_k:
            break
    return list(out)


def query_metrics(c: CandidateLists, i: int, ranking: Sequence[str], top_k: int = 10) -> dict[str, float]:
    """The figures `groundwork eval retrieval` reports for question ``i`` from its chunk ranking:
    MultiHop-RAG's chunk-level containment metrics, else document-level nDCG@10, recall@10, MRR@10, MAP@10."""
    q = c.queries[i]
    if c.multihop:
        return multihop_metrics([c.chunks[cid].text for cid in ranking[:top_k]], q.facts)
    docs = documents(c, ranking, top_k)
    return {
        "ndcg@10": ndcg_at_k(docs, q.qrels, 10),
        "recall@10": recall_at_k(docs, q.qrels, 10),
        "mrr@10": mrr_at_k(docs, q.qrels, 10),
        "map@10": map_at_k(docs, q.qrels, 10),
    }
