"""The retrieval cache: ranked chunks of a repeated search, in process memory (an LRU with a TTL).

A key is the sha256 of: the caller's access view (tenant and sorted groups, never the API key), the
normalised query, mode, top_k and filter, a hash of the settings that shape retrieval, and the index
version read from the store for this search. Any index change (ingest, delete, reindex, rollback,
repair, from this process, another one or another replica) records a new index version, so the
entries of the old one are never served again; they leave by LRU order or TTL. The cache is per
process; it needs no sharing because the version comes from the shared store.

Library: ``cachetools.TTLCache`` (LRU eviction with a per-entry time to live).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any

from cachetools import TTLCache

from groundwork.config import Settings
from groundwork.filters import Filter
from groundwork.retrieve.pipeline import PipelineResult, SearchPipeline
from groundwork.types import Access, SearchHit


def normalise_question(text: str) -> str:
    """The question as a cache key sees it: Unicode NFKC, case-folded, whitespace collapsed. Only
    differences no stage of the pipeline distinguishes are removed (the embedder is uncased, BM25
    case-folds), so two questions with one normal form get the same answer."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def access_view(access: Access | None) -> list[Any]:
    """What decides which documents a caller sees: ``["*"]`` for everything, else [tenant, sorted groups].
    Two keys with the same view see the same documents, so they may share entries; nothing else may."""
    if access is None or access.everything:
        return ["*"]
    return [access.tenant, sorted(set(access.groups))]


def digest(*parts: Any) -> str:
    """sha256 (hex) of the parts as canonical JSON."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def retrieval_settings_hash(settings: Settings) -> str:
    """Hash of every setting that changes a ranking: retrieval, rerank, the embedding model and the
    full-text index options."""
    fts = {k: v for k, v in settings.index.model_dump(mode="json").items() if k.startswith("fts_")}
    return digest(
        settings.retrieval.model_dump(mode="json"),
        settings.rerank.model_dump(mode="json"),
        settings.embedder.model,
        fts,
        settings.store,
    )


def filter_text(flt: str | Filter | None) -> str | None:
    return flt if isinstance(flt, str) or flt is None else repr(flt)


class CacheCounter:
    """Hits and misses of one cache (read by the Prometheus collector when scraped)."""

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()

    def count(self, hit: bool) -> None:
        with self._lock:
            if hit:
                self.hits += 1
            else:
                self.misses += 1


class CachedSearchPipeline(SearchPipeline):
    """``SearchPipeline`` whose ``search`` results are cached (``search_documents`` is built on it).

    Args:
        inner: the pipeline that runs on a miss (its retriever, reranker and decomposer are shared).
        version: reads the current index version from the store (called once per search).
        settings_hash: hash of every setting that changes a ranking (retrieval, rerank, embedder model).
        max_entries, ttl_s: LRU size and time to live (seconds).
    """

    def __init__(
        self,
        inner: SearchPipeline,
        version: Callable[[], int | None],
        settings_hash: str,
        max_entries: int,
        ttl_s: float,
    ) -> None:
        super().__init__(inner.retriever, inner.reranker, inner.decomposer, inner.rerank_depth)
        self.version, self.settings_hash = version, settings_hash
        self.entries: TTLCache = TTLCache(maxsize=max_entries, ttl=ttl_s)
        self.counter = CacheCounter()
        self._lock = threading.Lock()  # cachetools caches are not thread-safe

    def search(
        self,
        query: str,
        mode: str | None = None,
        top_k: int | None = None,
        where: str | Filter | None = None,
        access: Access | None = None,
    ) -> PipelineResult:
        """As ``SearchPipeline.search``; a hit returns copies of the stored hits (timings: ``cache``, ms)."""
        key = digest(
            "search",
            access_view(access),
            normalise_question(query),
            mode or self.retriever.settings.mode,
            top_k or self.retriever.settings.top_k,
            filter_text(where),
            self.settings_hash,
            self.version(),
        )
        with self._lock:
            stored = self.entries.get(key)
        self.counter.count(stored is not None)
        if stored is not None:
            hits, subs = stored
            return PipelineResult(_copy(hits), list(subs), {"cache": 0.0})
        result = super().search(query, mode, top_k, where, access)
        with self._lock:
            self.entries[key] = (_copy(result.hits, drop_vectors=True), tuple(result.sub_questions))
        return result


def _copy(hits: Sequence[SearchHit], drop_vectors: bool = False) -> list[SearchHit]:
    """Hits a caller may change without changing the cache's (chunk vectors dropped when stored)."""
    out = []
    for h in hits:
        chunk = dataclasses.replace(h.chunk, vector=None) if drop_vectors else dataclasses.replace(h.chunk)
        out.append(dataclasses.replace(h, chunk=chunk, scores=dict(h.scores)))
    return out
