"""The answer cache: a repeated question gets the stored, already-guarded answer without retrieval or
generation.

Key (sha256): the caller's access view (tenant and sorted groups: never the API key), the normalised
question, mode, top_k, filter and the conversation so far, a hash of the settings that shape an
answer (retrieval, rerank, answer, generator, guardrails, embedding model, prompt template
reference ``id@version#hash``) and the index version read for this request. Any index change
records a new version, so nothing cached before it is served after it, whichever process or replica
made the change.

Two tiers: an in-process LRU with a TTL (``cachetools.TTLCache``) in front of a durable table
(``groundwork.state.cache``: SQLite beside the index, or PostgreSQL shared by replicas). What is
stored is the answer after the output guardrails (the refusal of a blocked answer included), so a
hit never skips a guard that ran on it; the question's own screen runs again on every hit (see
``KnowledgeBase.ask``). Answers written by the fallback generator are not stored: the LLM may be
back for the next request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from cachetools import TTLCache

from groundwork.config import Settings
from groundwork.filters import Filter
from groundwork.retrieve.cache import (
    CacheCounter,
    access_view,
    digest,
    filter_text,
    normalise_question,
    retrieval_settings_hash,
)
from groundwork.types import Access, Answer, Chunk, Citation, GuardDecision, SearchHit, TokenUsage, to_wire


@runtime_checkable
class AnswerCacheStore(Protocol):
    """The durable tier (``groundwork.state.cache``): opaque keys to JSON payloads."""

    def get(self, key: str) -> dict[str, Any] | None:
        """The payload of ``key``, unless missing or older than the TTL."""
        ...

    def put(self, key: str, index_version: int | None, answer_id: str, payload: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


def answer_settings_hash(settings: Settings, prompt_ref: str | None) -> str:
    """Hash of every setting that changes an answer: the retrieval ones, answer, generator and
    guardrail settings, and the prompt template reference (``id@version#hash``: an edited template
    is another prompt)."""
    s = settings
    parts = [s.answer, s.generator, s.guard]
    return digest(retrieval_settings_hash(s), [p.model_dump(mode="json") for p in parts], prompt_ref)


def answer_key(
    question: str,
    mode: str,
    top_k: int,
    flt: str | Filter | None,
    history: Sequence[dict[str, str]] | None,
    access: Access | None,
    settings_hash: str,
    index_version: int | None,
) -> str:
    """The cache key of one request (see the module docstring)."""
    turns = [[t.get("role", ""), normalise_question(t.get("content", ""))] for t in history or ()]
    return digest(
        "answer",
        access_view(access),
        normalise_question(question),
        mode,
        top_k,
        filter_text(flt),
        turns,
        settings_hash,
        index_version,
    )


def cacheable(answer: Answer) -> bool:
    """Whether ``answer`` may be served again: not a refusal of the question, not a fallback's answer."""
    return "fallback" not in answer.flags and not any(
        d.stage == "input" and d.action == "blocked" for d in answer.guardrails
    )


def to_payload(answer: Answer) -> dict[str, Any]:
    """The answer as JSON: its wire fields, plus what the audit record of a hit needs."""
    hits = [{"chunk_id": h.chunk.chunk_id, "doc_id": h.chunk.doc_id, "source": h.chunk.source, "score": h.score}
            for h in answer.hits]  # fmt: skip
    return to_wire(answer) | {"question": answer.question, "evidence_score": answer.evidence_score, "hits": hits}


def from_payload(p: dict[str, Any]) -> Answer:
    """The stored answer (raises KeyError/TypeError for a payload of another shape)."""
    hits = [
        SearchHit(Chunk(h["chunk_id"], h["doc_id"], h["source"], 0, "", ""), float(h["score"]), i + 1)
        for i, h in enumerate(p["hits"])
    ]
    return Answer(
        question=p["question"],
        answer=p["answer"],
        abstained=p["abstained"],
        citations=[Citation(**c) for c in p["citations"]],
        timings_ms={},
        hits=hits,
        evidence_score=p["evidence_score"],
        answer_id=p["answer_id"],
        search_query=p["search_query"],
        sub_questions=list(p["sub_questions"]),
        model_id=p["model_id"],
        prompt=p["prompt"],
        guardrails=[GuardDecision(**g) for g in p["guardrails"]],
        flags=list(p["flags"]),
        invalid_citations=p["invalid_citations"],
        blocked=p["blocked"],
        notice=p["notice"],
        index_version=p["index_version"],
        usage=TokenUsage(**p["usage"]) if p.get("usage") else None,
    )


class AnswerCache:
    """The two tiers. ``get`` returns a fresh copy of the original answer (its id, its usage), or None."""

    def __init__(self, store: AnswerCacheStore, settings_hash: str, max_entries: int, ttl_s: float) -> None:
        self.store, self.settings_hash, self.ttl_s = store, settings_hash, ttl_s
        self.local: TTLCache = TTLCache(maxsize=max_entries, ttl=ttl_s)
        self.counter = CacheCounter()
        self._lock = threading.Lock()  # cachetools caches are not thread-safe

    def get(self, key: str) -> Answer | None:
        with self._lock:
            payload = self.local.get(key)
        if payload is None:
            payload = self.store.get(key)
            if payload is not None:
                with self._lock:
                    self.local[key] = payload
        # an entry loaded from the table keeps its first storing time: never served past the TTL
        if payload is not None and time.time() - payload.get("stored_at", 0.0) > self.ttl_s:
            payload = None
        self.counter.count(payload is not None)
        if payload is None:
            return None
        try:
            return from_payload(payload)
        except (KeyError, TypeError, ValueError):  # written by another version of Groundwork: a miss
            return None

    def put(self, key: str, answer: Answer) -> None:
        if not cacheable(answer):
            return
        payload = to_payload(answer) | {"stored_at": time.time()}
        with self._lock:
            self.local[key] = payload
        self.store.put(key, answer.index_version, answer.answer_id, payload)

    def close(self) -> None:
        self.store.close()
