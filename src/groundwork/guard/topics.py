"""Denied topics and deny words.

Denied topics are described in natural language ("investment advice: recommendations to buy or sell
securities") and matched by meaning: the cosine similarity (bundled embedder) between the text and
each topic description; at or above the threshold the text is on that topic. Deny words are matched
case-insensitively as whole words or phrases.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from groundwork.index.embedder import Embedder


class DeniedTopics:
    def __init__(self, embedder: Embedder, topics: Sequence[str], threshold: float) -> None:
        self.embedder, self.topics, self.threshold = embedder, list(topics), threshold
        self._vecs = embedder.embed(self.topics) if self.topics else np.zeros((0, embedder.dimension), np.float32)

    def match(self, text: str) -> tuple[str, float] | None:
        """The closest denied topic and its similarity when at or above the threshold, else None."""
        if not self.topics or not text.strip():
            return None
        sims = self._vecs @ self.embedder.embed([text])[0]
        i = int(np.argmax(sims))
        return (self.topics[i], float(sims[i])) if sims[i] >= self.threshold else None


class DenyWords:
    def __init__(self, words: Sequence[str]) -> None:
        self.words = [w for w in words if w.strip()]
        alternation = "|".join(re.escape(w.strip()) for w in sorted(self.words, key=len, reverse=True))
        self._rx = re.compile(rf"(?<!\w)(?:{alternation})(?!\w)", re.I) if self.words else None

    def find(self, text: str) -> list[re.Match[str]]:
        return list(self._rx.finditer(text)) if self._rx else []

    def mask(self, text: str) -> str:
        return self._rx.sub("[DENIED]", text) if self._rx else text
