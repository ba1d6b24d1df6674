"""The Retriever: one query in, ranked chunks out, by BM25, dense vectors, or both fused."""

from __future__ import annotations

import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from groundwork.config import RetrievalSettings
from groundwork.errors import RequestError
from groundwork.filters import Filter, parse_filter
from groundwork.index.embedder import Embedder
from groundwork.index.store import RankedRef, RankingStore, Store
from groundwork.retrieve.fusion import fuse, fuse_scores, length_weights
from groundwork.types import Access, SearchHit

_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="keyword-search")

MODES = ("bm25", "dense", "hybrid")


@dataclass
class Retrieval:
    """Hits best first, plus timings in ms (``embed`` for the query vector, ``retrieve`` for search)."""

    hits: list[SearchHit]
    timings_ms: dict[str, float] = field(default_factory=dict)


class Retriever:
    """Searches a store.

    ``hybrid`` takes ``settings.candidates`` hits from BM25 and from dense search, fuses them by
    ``settings.fusion`` (one of retrieve.fusion.FUSIONS, each with its source there; RRF uses
    k = ``settings.rrf_k``), each list weighted by ``bm25_weight`` / ``dense_weight`` (moved towards
    BM25 for long questions by ``long_query_bm25_weight``, see fusion.length_weights), and keeps ``top_k``. The filter is applied inside each
    search (pre-filter), so a filtered query still returns ``top_k`` hits when that many chunks match.

    Raises:
        ValueError: unknown mode or empty query. FilterError: invalid filter or unknown field.
    """

    def __init__(self, store: Store, embedder: Embedder, settings: RetrievalSettings | None = None) -> None:
        self.store, self.embedder = store, embedder
        self.settings = settings or RetrievalSettings()
        # Hybrid reads only the fused top_k rows when the store can rank without reading rows.
        self.late_rows = isinstance(store, RankingStore)
        # An encoder held to fewer threads than there are cores leaves a core to the keyword search,
        # which then runs while the query is embedded (see _hybrid).
        threads = getattr(getattr(embedder, "settings", None), "threads", None)
        self.keyword_first = bool(threads) and threads < (os.cpu_count() or 1)

    def retrieve(
        self,
        query: str,
        mode: str | None = None,
        top_k: int | None = None,
        where: str | Filter | None = None,
        access: Access | None = None,
    ) -> Retrieval:
        mode = mode or self.settings.mode
        if mode not in MODES:
            raise RequestError(f"mode must be one of {', '.join(MODES)}, not '{mode}'")
        if not query.strip():
            raise RequestError("the query is empty; give the words to search for")
        top_k = top_k or self.settings.top_k
        flt = parse_filter(where) if isinstance(where, str) else where
        timings = {"embed": 0.0}
        t0 = time.perf_counter()
        vector = None
        depth = max(self.settings.candidates, top_k)
        early = None
        if mode == "hybrid" and self.keyword_first:
            early = _POOL.submit(self._keyword_list, query, depth, flt, access)
        if mode in ("dense", "hybrid"):
            vector = self.embedder.embed([query])[0]
            timings["embed"] = (time.perf_counter() - t0) * 1000
        t1 = time.perf_counter()
        if mode == "bm25":
            hits = self.store.keyword_search(query, top_k, flt, access)
        elif mode == "dense":
            hits = self.store.vector_search(vector, top_k, flt, access)
        else:
            hits = self._hybrid(query, vector, depth, top_k, flt, access, early)
        timings["retrieve"] = (time.perf_counter() - t1) * 1000
        if vector is not None:  # a score that means the same for every query (the fused one does not)
            for h in hits:
                if h.chunk.vector is not None:
                    h.relevance = round(float(np.dot(vector, h.chunk.vector)), 6)
        return Retrieval(hits=hits, timings_ms=timings)

    def _keyword_list(
        self, query: str, depth: int, flt: Filter | None, access: Access | None
    ) -> list[RankedRef] | list[SearchHit]:
        """The keyword list ``_hybrid`` fuses: ids and scores on a RankingStore, else full hits."""
        if self.late_rows:
            return self.store.keyword_ranking(query, depth, flt, access)  # type: ignore[attr-defined]
        return self.store.keyword_search(query, depth, flt, access)

    def _hybrid(
        self,
        query: str,
        vector: np.ndarray,
        depth: int,
        top_k: int,
        flt: Filter | None,
        access: Access | None,
        early: Future | None = None,
    ) -> list[SearchHit]:
        """Both lists ``depth`` deep, fused, cut to ``top_k``; ``early`` is the keyword list
        (``_keyword_list``) when it was started before the query was embedded.

        By default the keyword search starts once the query is embedded: run beside an encoder that
        uses every core it took CPU from the encoder's threads (on 2 cores the encode went from 12-15
        to ~20 ms) and saved less than it cost. It runs beside the vector search instead (both stores
        release the GIL in their queries): hybrid costs embed + max(bm25, dense) + fusion. With
        ``embedder.threads`` below the core count it starts first and costs max(embed, bm25) + dense
        + fusion. Measured in bench/hybrid_latency.py and bench/query_targets.py."""
        s = self.settings
        words = len(query.split())
        weights = length_weights(
            s.bm25_weight, s.dense_weight, words, s.long_query_bm25_weight, s.short_query_words, s.long_query_words
        )
        if self.late_rows:
            keyword = early or _POOL.submit(self._keyword_list, query, depth, flt, access)
            hits = self._hybrid_by_ranking(keyword, vector, depth, top_k, flt, access, weights)
            if hits is not None:
                return hits
            early = None  # the rows moved under the ranking: both lists again, with their rows
        keyword = early or _POOL.submit(self.store.keyword_search, query, depth, flt, access)
        dense = self.store.vector_search(vector, depth, flt, access)
        return fuse({"bm25": keyword.result(), "dense": dense}, s.fusion, weights, s.rrf_k)[:top_k]

    def _hybrid_by_ranking(
        self,
        keyword: Future,
        vector: np.ndarray,
        depth: int,
        top_k: int,
        flt: Filter | None,
        access: Access | None,
        weights: dict[str, float],
    ) -> list[SearchHit] | None:
        """``_hybrid`` on a RankingStore: the two lists are ids and scores; only the ``top_k`` fused
        chunks are read. The same hits as ``fuse`` over full lists (same scores, ranks, per-list
        ``scores``, first list's row); None when the store could not read a kept row."""
        store: RankingStore = self.store  # type: ignore[assignment]
        dense = store.vector_ranking(vector, depth, flt, access)
        lists = {"bm25": keyword.result(), "dense": dense}
        fused = fuse_scores(
            {n: [(r.chunk_id, r.score) for r in ranked] for n, ranked in lists.items()},
            self.settings.fusion,
            weights,
            self.settings.rrf_k,
        )[:top_k]
        first: dict[str, RankedRef] = {}
        scores: dict[str, dict[str, float]] = {}
        for name, ranked in lists.items():
            for r in ranked:
                first.setdefault(r.chunk_id, r)
                scores.setdefault(r.chunk_id, {})[name] = r.score
        chunks = store.chunks_at([first[c] for c, _ in fused])
        if chunks is None:
            return None
        return [
            SearchHit(chunk=chunk, score=score, rank=i, scores=scores[c])
            for i, ((c, score), chunk) in enumerate(zip(fused, chunks), 1)
        ]
