"""Multi-hop query decomposition: split a question that needs several pieces of evidence into
sub-questions, so each piece is retrieved on its own (the union is then fused and answered over).

- ``heuristic`` (no model): split at clause boundaries that join two claims about different sources
  or entities - ", while", ", whereas", "; ", ", and does/did/is/was ...", "(,) and how/what/where ...",
  " as does", " and is also",
  and the "Between A and B," frame of temporal comparisons. Parts shorter than four words are dropped.
  Good for comparison questions ("Did A report X, while B reported Y?"); it cannot split an inference
  question whose parts are not joined by such a connective.
- ``llm``: the configured chat model writes the sub-questions (prompt template ``decompose``).
The original question is always searched too, so decomposition can only add evidence.

How the lists share the top-k (``retrieval.decompose_merge``):
- ``rrf``: reciprocal rank fusion of all lists (Cormack, Clarke & Buettcher 2009), the original
  question weighted ``retrieval.decompose_original_weight``. Every list has an equal say in every rank,
  so shorter, vaguer sub-questions can push the chunk that answers the whole question down.
- ``interleave``: round-robin over the lists, the original question first, duplicates skipped (the
  team-draft idea of interleaved evaluation, Radlinski, Kurup & Joachims 2008, used here to merge):
  each sub-question gets every (n+1)-th slot.
- ``coverage``: the original question's ranking, except that each sub-question's best
  ``retrieval.decompose_slots`` chunks not already in the top ``top_k`` take the last places of the top
  ``top_k`` (set-cover style coverage of the sub-questions; the original ranking keeps the first
  places, so a sub-question can only add evidence at the bottom of the top-k).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol

from groundwork.errors import GeneratorError
from groundwork.llm.chat import ChatModel
from groundwork.llm.prompts import load_prompt
from groundwork.types import SearchHit

_SPLIT = re.compile(
    r",?\s+(?:while|whereas)\s+|;\s+|,\s+and\s+(?=(?:does|did|do|is|was|are|were|has|have|had|can|will|would)\b)"
    r"|,?\s+and\s+(?=(?:how|what|where|when|who|which|why)\b)|,?\s+as\s+(?=does\b|did\b|do\b)|,?\s+and\s+(?=(?:is|was|has|had)\s+also\b)|,?\s+and\s+(?=also\b)",
    re.I,
)
_BETWEEN = re.compile(r"^\s*between\s+(.+?),?\s+and\s+(.+?),\s+(.+)$", re.I | re.S)


class Decomposer(Protocol):
    name: str

    def decompose(self, question: str) -> list[str]:
        """Sub-questions (not including the question itself); [] when it does not split."""
        ...


class HeuristicDecomposer:
    name = "heuristic"

    def __init__(self, max_parts: int = 4) -> None:
        self.max_parts = max_parts

    def decompose(self, question: str) -> list[str]:
        parts: list[str] = []
        if m := _BETWEEN.match(question):
            a, b, rest = m.groups()
            parts = [f"{a} {rest}", f"{b} {rest}"]
        else:
            parts = _SPLIT.split(question)
        parts = [" ".join(p.strip(" ,;?").split()) for p in parts]
        parts = [p for p in parts if len(p.split()) >= 4]
        return parts[: self.max_parts] if len(parts) > 1 else []


class LLMDecomposer:
    name = "llm"

    def __init__(self, chat: ChatModel, max_parts: int = 4) -> None:
        self.chat, self.max_parts = chat, max_parts
        self.prompt = load_prompt("decompose")
        self.fallback = HeuristicDecomposer(max_parts)

    def decompose(self, question: str) -> list[str]:
        try:
            reply = self.chat.complete(self.prompt.render(question=question, max_parts=self.max_parts), max_tokens=200)
        except GeneratorError:
            return self.fallback.decompose(question)
        lines = [re.sub(r"^\s*(?:[-*]|\d+[.)])\s*", "", ln).strip() for ln in reply.splitlines()]
        lines = [ln for ln in lines if len(ln.split()) >= 3 and ln.lower() != question.lower().strip()]
        return lines[: self.max_parts] if len(lines) > 1 else []


def interleave(lists: Sequence[Sequence[SearchHit]], depth: int) -> list[SearchHit]:
    """Round-robin over ``lists`` (best first each; the first list leads every round), each chunk
    once -> at most ``depth`` hits, ranks renumbered from 1, score 1/rank."""
    seen: set[str] = set()
    out: list[SearchHit] = []
    for i in range(max((len(x) for x in lists), default=0)):
        for hits in lists:
            if i < len(hits) and hits[i].chunk.chunk_id not in seen:
                seen.add(hits[i].chunk.chunk_id)
                out.append(hits[i])
    return [replace(h, rank=r, score=1.0 / r) for r, h in enumerate(out[:depth], 1)]


def coverage(
    main: Sequence[SearchHit], subs: Sequence[Sequence[SearchHit]], top_k: int, slots: int, depth: int
) -> list[SearchHit]:
    """``main`` (the original question's hits, best first) with each sub-question's best ``slots``
    chunks that are not in ``main``'s top ``top_k`` placed in the last places of the top ``top_k``
    (``main``'s displaced hits follow them) -> at most ``depth`` hits, ranks renumbered from 1, score
    1/rank."""
    taken = {h.chunk.chunk_id for h in main[:top_k]}
    added: list[SearchHit] = []
    for hits in subs:
        fresh = [h for h in hits if h.chunk.chunk_id not in taken][:slots]
        taken.update(h.chunk.chunk_id for h in fresh)
        added += fresh
    added = added[:top_k]
    ids = {h.chunk.chunk_id for h in added}
    rest = [h for h in main if h.chunk.chunk_id not in ids]
    keep = top_k - len(added)
    out = rest[:keep] + added + rest[keep:]
    return [replace(h, rank=r, score=1.0 / r) for r, h in enumerate(out[:depth], 1)]
