"""The search pipeline: (decomposition) -> retrieval per query -> (fusion of the queries) -> (reranking).

Used by every search and answer path (CLI, API, evaluation), so what is measured is what users get.
With decomposition, the question and each sub-question are retrieved at the candidate depth and the
lists are merged as ``retrieval.decompose_merge`` says (RRF, round-robin interleaving, or the
question's ranking with slots kept for each sub-question: see retrieve.decompose); with a reranker, ``rerank.depth`` candidates are
reordered and cut to ``top_k``.

``search_documents`` groups the ranked chunks by document (retrieve.grouping): it ranks chunks at
least ``retrieval.candidates`` deep (``rerank.depth`` with a reranker, so every grouped chunk is
reranked), and while fewer than ``top_k`` distinct documents come out of a full list, it doubles the
depth, up to ``retrieval.group_max_chunks``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

from groundwork.config import RetrievalSettings
from groundwork.filters import Filter, parse_filter
from groundwork.retrieve.decompose import Decomposer, coverage, interleave
from groundwork.retrieve.fusion import rrf_fusion
from groundwork.retrieve.grouping import group_by_document
from groundwork.retrieve.rerank import Reranker
from groundwork.retrieve.retriever import Retrieval, Retriever
from groundwork.types import Access, DocumentHit, SearchHit


@dataclass
class PipelineResult:
    """Hits best first; ``sub_questions`` when decomposed; timings in ms (embed, retrieve, rerank)."""

    hits: list[SearchHit]
    sub_questions: list[str] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)


@dataclass
class DocumentResult:
    """Documents best first; ``chunks``: how many ranked chunks they were grouped from (the depth
    reached); timings in ms (embed, retrieve, rerank summed over the rounds; group)."""

    documents: list[DocumentHit]
    chunks: int
    sub_questions: list[str] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)


class SearchPipeline:
    def __init__(
        self,
        retriever: Retriever,
        reranker: Reranker | None = None,
        decomposer: Decomposer | None = None,
        rerank_depth: int = 30,
    ) -> None:
        self.retriever, self.reranker, self.decomposer = retriever, reranker, decomposer
        self.rerank_depth = rerank_depth

    def search(
        self,
        query: str,
        mode: str | None = None,
        top_k: int | None = None,
        where: str | Filter | None = None,
        access: Access | None = None,
    ) -> PipelineResult:
        """Raises ValueError (bad mode, empty query) and FilterError like Retriever.retrieve."""
        top_k = top_k or self.retriever.settings.top_k
        flt = parse_filter(where) if isinstance(where, str) else where
        depth = max(top_k, self.rerank_depth) if self.reranker else top_k
        timings = {"embed": 0.0, "retrieve": 0.0, "rerank": 0.0}
        subs = self.decomposer.decompose(query) if self.decomposer else []
        if subs:
            wide = max(depth, self.retriever.settings.candidates)
            lists: dict[str, list[SearchHit]] = {}
            for i, q in enumerate([query, *subs]):
                r = self.retriever.retrieve(q, mode, wide, flt, access)
                _add(timings, r)
                lists[f"q{i}"] = r.hits
            hits = _merge(lists, self.retriever.settings, top_k, depth)
        else:
            r = self.retriever.retrieve(query, mode, depth, flt, access)
            _add(timings, r)
            hits = r.hits
        if self.reranker:
            t0 = time.perf_counter()
            hits = self._rerank_window(query, hits, top_k)
            timings["rerank"] = (time.perf_counter() - t0) * 1000
        return PipelineResult(hits[:top_k], subs, timings)

    def _rerank_window(self, query: str, hits: list[SearchHit], top_k: int) -> list[SearchHit]:
        """The first ``rerank_depth`` hits reordered by the reranker; deeper hits (``top_k`` above the
        depth, e.g. 100 documents for recall@100) follow in first-stage order, so one search never costs
        more than ``rerank_depth`` reranker scores (Elasticsearch's rescore ``window_size``: documents
        outside the window keep their order after it). Their scores are shifted by one constant to rank
        below the window's lowest; ``scores`` keeps each hit's first-stage scores."""
        window, tail = hits[: self.rerank_depth], hits[self.rerank_depth :]
        if not tail:
            return self.reranker.rerank(query, window, top_k)
        ranked = self.reranker.rerank(query, window, len(window))
        shift = min(h.score for h in ranked) - max(h.score for h in tail) - 1e-6
        start = len(ranked)
        return ranked + [replace(h, score=h.score + shift, rank=start + i + 1) for i, h in enumerate(tail)]

    def search_documents(
        self,
        query: str,
        mode: str | None = None,
        top_k: int | None = None,
        where: str | Filter | None = None,
        access: Access | None = None,
    ) -> DocumentResult:
        """``top_k`` distinct documents (fewer only when fewer match, or when the best
        ``retrieval.group_max_chunks`` chunks come from fewer), each with its best passages. The
        chunks come from ``search``, so filters, ``access``, decomposition and reranking apply as there.
        Raises as ``search`` does."""
        s = self.retriever.settings
        top_k = top_k or s.top_k
        cap = max(top_k, s.group_max_chunks)
        # bm25 / dense: three chunks per document asked for covers the usual case (SciFact: 7.3
        # documents in 10 chunks), and a deeper list only appends to a shallower one; fetching
        # ``candidates`` at once cost them ~50 ms for rows never shown. Hybrid fuses lists at least
        # ``candidates`` deep whatever the depth, so starting there costs nothing, while a fused
        # list deeper than ``candidates`` ranks differently (RRF over deeper lists). A reranker needs
        # its whole depth. The loop below deepens when documents are still missing.
        first = s.candidates if (mode or s.mode) == "hybrid" else 3 * top_k
        depth = min(cap, max(top_k, self.rerank_depth if self.reranker else first))
        timings: dict[str, float] = {}
        while True:
            r = self.search(query, mode, depth, where, access)
            for k, v in r.timings_ms.items():
                timings[k] = timings.get(k, 0.0) + v
            t0 = time.perf_counter()
            docs = group_by_document(r.hits, top_k, s.group_passages, s.group_score)
            timings["group"] = timings.get("group", 0.0) + (time.perf_counter() - t0) * 1000
            # a list shorter than asked for holds every chunk that matches: deeper finds nothing new
            if len(docs) >= top_k or len(r.hits) < depth or depth >= cap:
                return DocumentResult(docs, len(r.hits), r.sub_questions, timings)
            depth = min(cap, depth * 2)


def _merge(lists: dict[str, list[SearchHit]], s: RetrievalSettings, top_k: int, depth: int) -> list[SearchHit]:
    """The question's list (``q0``) and its sub-questions' lists -> one list ``depth`` deep, merged as
    ``retrieval.decompose_merge`` says (see retrieve.decompose)."""
    ranked = list(lists.values())
    if s.decompose_merge == "interleave":
        return interleave(ranked, depth)
    if s.decompose_merge == "coverage":
        return coverage(ranked[0], ranked[1:], top_k, s.decompose_slots, depth)
    return rrf_fusion(lists, k=s.rrf_k, weights={"q0": s.decompose_original_weight})[:depth]


def _add(timings: dict[str, float], r: Retrieval) -> None:
    for k, v in r.timings_ms.items():
        timings[k] = timings.get(k, 0.0) + v
