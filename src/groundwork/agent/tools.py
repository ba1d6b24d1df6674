"""The built-in tools the agent offers the model (OpenAI Chat Completions tool schema), and the
server-side search tool, which always runs under the caller's access (tenant + groups).

The search tool's result is the numbered passages as JSON; numbering runs through the whole turn, so
the model cites ``[n]`` and the answer's citations are the passages with those numbers. Retrieved text
passes the context guardrails first (prompt injection: ``guard.injection_context``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from groundwork.kb import KnowledgeBase
from groundwork.types import Access, ContextChunk, SearchHit

SEARCH = "search_knowledge_base"
ESCALATE = "escalate_to_human"
PASSAGE_CHARS = 1500  # a passage's text as the model sees it, at most

SEARCH_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": SEARCH,
        "description": "Search the knowledge base; returns numbered passages to cite as [n].",
        "parameters": {
            "type": "object",
            "properties": {
                "query": {"type": "string", "minLength": 1, "maxLength": 2000},
                "top_k": {"type": "integer", "minimum": 1, "maximum": 20},
            },
            "required": ["query"],
            "additionalProperties": False,
        },
    },
}

ESCALATE_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": ESCALATE,
        "description": "Hand the conversation to a person when you cannot answer from the knowledge base "
        "or the user asks for a person.",
        "parameters": {
            "type": "object",
            "properties": {"reason": {"type": "string", "maxLength": 1000}},
            "required": ["reason"],
            "additionalProperties": False,
        },
    },
}


@dataclass
class Evidence:
    """What the searches of one turn found: passages numbered 1, 2, ... across the turn, and the best
    relevance (cosine similarity) seen, which is the turn's retrieval confidence."""

    passages: list[SearchHit] = field(default_factory=list)
    confidence: float | None = None
    searches: int = 0
    withheld: set[str] = field(default_factory=set)  # chunk ids the context guardrails kept from the model

    def add(self, hits: list[SearchHit]) -> list[tuple[int, SearchHit]]:
        """Number the new hits (a chunk seen before keeps its number); returns (n, hit) of ``hits``."""
        known = {h.chunk.chunk_id: i + 1 for i, h in enumerate(self.passages)}
        out = []
        for h in hits:
            if h.chunk.chunk_id not in known:
                self.passages.append(h)
                known[h.chunk.chunk_id] = len(self.passages)
            out.append((known[h.chunk.chunk_id], h))
            if h.relevance is not None:
                self.confidence = max(self.confidence if self.confidence is not None else -1.0, h.relevance)
        self.searches += 1
        return out


def search_tool(kb: KnowledgeBase, access: Access, evidence: Evidence, query: str, top_k: int = 5) -> str:
    """Run ``search_knowledge_base`` for a caller with ``access``: the JSON text given to the model.
    Raises as ``KnowledgeBase.search`` does."""
    hits = with_relevance(kb, query, kb.search(query, top_k=top_k, access=access))
    numbered = evidence.add(hits)
    context = [ContextChunk(n, h, h.chunk.text[:PASSAGE_CHARS], 0) for n, h in numbered]
    kept, _, _ = kb.components.guardrails.check_context(context)
    number = {h.chunk.chunk_id: n for n, h in numbered}  # the guard renumbers what it keeps; the turn's n stay
    passages = [
        {"n": number[c.hit.chunk.chunk_id], "doc_id": c.hit.chunk.doc_id, "title": c.hit.chunk.title, "text": c.text}
        for c in kept
    ]
    evidence.withheld |= set(number) - {c.hit.chunk.chunk_id for c in kept}
    withheld = len(context) - len(kept)
    return json.dumps({"passages": passages, "withheld": withheld}, ensure_ascii=False)


def with_relevance(kb: KnowledgeBase, query: str, hits: list[SearchHit]) -> list[SearchHit]:
    """``hits`` with ``relevance`` (query-chunk cosine similarity) filled in where the search left it
    out (bm25 mode does not embed the query), so the policy's confidence means the same in every mode."""
    if not hits or all(h.relevance is not None for h in hits):
        return hits
    vectors = kb.embedder.embed([query] + [h.chunk.text for h in hits])  # L2-normalised: dot = cosine
    sims = vectors[1:] @ vectors[0]
    return [h if h.relevance is not None else replace(h, relevance=float(s)) for h, s in zip(hits, sims, strict=True)]
