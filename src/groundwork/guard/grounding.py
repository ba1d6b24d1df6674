"""Contextual grounding check, with the semantics of Bedrock Guardrails' check: two scores in [0, 1].

- grounding: is each answer sentence supported by the context? For every answer sentence (citation
  markers removed) take its best cosine similarity with any context sentence (bundled embedder); the
  score is the mean over answer sentences, clipped to [0, 1]. A verbatim quote scores 1.
- relevance: does the answer address the question? The cosine similarity of question and answer,
  clipped to [0, 1].

An answer scoring below a threshold (0-0.99, calibrated on MultiHop-RAG dev: docs/benchmarks.md)
is blocked or flagged. Abstentions are not checked (they claim nothing).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from groundwork.index.embedder import Embedder
from groundwork.text import split_sentences

_MARKER = re.compile(r"\s*\[\d+\]")


@dataclass(frozen=True)
class GroundingScores:
    grounding: float
    relevance: float
    unsupported: tuple[str, ...]  # answer sentences whose best support is below 0.5


def _sentences(text: str) -> list[str]:
    return [s for s in (" ".join(x.split()) for x in split_sentences(text)) if len(s.split()) >= 3]


def grounding_scores(embedder: Embedder, question: str, answer: str, context: Sequence[str]) -> GroundingScores:
    """Scores of ``answer`` against ``context`` texts and ``question`` (see the module docstring)."""
    claims = _sentences(_MARKER.sub("", answer)) or [_MARKER.sub("", answer).strip()]
    support = [s for text in context for s in _sentences(text)]
    if not support or not any(claims):
        return GroundingScores(0.0, 0.0, tuple(claims))
    vecs = embedder.embed([question, " ".join(claims), *claims, *support])
    q, whole, c, s = vecs[0], vecs[1], vecs[2 : 2 + len(claims)], vecs[2 + len(claims) :]
    best = (c @ s.T).max(axis=1)
    grounding = float(np.clip(best.mean(), 0.0, 1.0))
    relevance = float(np.clip(whole @ q, 0.0, 1.0))
    unsupported = tuple(cl for cl, b in zip(claims, best) if b < 0.5)
    return GroundingScores(grounding, relevance, unsupported)
