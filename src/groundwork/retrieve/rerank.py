"""Second-stage rerankers: reorder the first ``depth`` retrieved candidates, keep ``top_k``.

- MMR (Carbonell & Goldstein 1998, Maximal Marginal Relevance): greedily pick
  argmax lambda * rel(d) - (1 - lambda) * max_{s in picked} cos(d, s) over chunk vectors, where rel(d)
  is the first-stage score min-max normalised to [0, 1] (so hybrid ranking is kept, not replaced by
  cosine alone); trades a little relevance for diversity. No model.
- Cross-encoder: a sentence-transformers ``CrossEncoder`` from a local folder scores each
  (query, chunk) pair jointly (Nogueira & Cho 2019, "Passage re-ranking with BERT").
- LLM listwise: the configured chat model is shown the numbered candidates and returns their order
  (Sun et al. 2023, "Is ChatGPT good at search?", RankGPT); numbers it omits keep their order after
  the ones it ranked, so a sloppy reply never loses a candidate.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from groundwork.errors import ConfigError, GeneratorError
from groundwork.index.embedder import Embedder
from groundwork.llm.chat import ChatModel
from groundwork.llm.prompts import load_prompt
from groundwork.types import SearchHit


@runtime_checkable
class Reranker(Protocol):
    name: str

    def rerank(self, query: str, hits: Sequence[SearchHit], top_k: int) -> list[SearchHit]:
        """``hits`` best first -> at most ``top_k`` hits best first, ranks renumbered from 1."""
        ...


def _ranked(
    hits: Sequence[SearchHit], scores: Sequence[float] | None = None, key: str | None = None
) -> list[SearchHit]:
    out = []
    for i, h in enumerate(hits):
        s = dict(h.scores)
        if scores is not None and key:
            s[key] = float(scores[i])
        out.append(replace(h, rank=i + 1, score=float(scores[i]) if scores is not None else h.score, scores=s))
    return out


class MMRReranker:
    name = "mmr"

    def __init__(self, embedder: Embedder, mmr_lambda: float = 0.7) -> None:
        if not 0 <= mmr_lambda <= 1:
            raise ConfigError("rerank.mmr_lambda must be between 0 and 1")
        self.embedder, self.lam = embedder, mmr_lambda

    def rerank(self, query: str, hits: Sequence[SearchHit], top_k: int) -> list[SearchHit]:
        if not hits:
            return []
        missing = [i for i, h in enumerate(hits) if h.chunk.vector is None]
        vecs = np.stack(
            [
                np.asarray(h.chunk.vector, np.float32)
                if h.chunk.vector is not None
                else np.zeros(self.embedder.dimension, np.float32)
                for h in hits
            ]
        )
        if missing:
            vecs[missing] = self.embedder.embed([hits[i].chunk.search_text for i in missing])
        scores = np.array([h.score for h in hits], dtype=np.float32)
        span = float(scores.max() - scores.min())
        rel = (scores - scores.min()) / span if span > 0 else np.ones(len(hits), np.float32)
        picked: list[int] = []
        pool = list(range(len(hits)))
        mmr_scores = []
        while pool and len(picked) < top_k:
            red = np.max(vecs[pool] @ vecs[picked].T, axis=1) if picked else np.zeros(len(pool))
            mmr = self.lam * rel[pool] - (1 - self.lam) * red
            j = int(np.argmax(mmr))
            picked.append(pool.pop(j))
            mmr_scores.append(float(mmr[j]))
        return _ranked([hits[i] for i in picked], mmr_scores, "mmr")


class CrossEncoderReranker:
    name = "cross-encoder"

    def __init__(self, model_path: str | Path, batch_size: int = 32, device: str = "cpu") -> None:
        path = Path(model_path)
        if not path.is_dir():
            raise ConfigError(
                f"rerank.model_path {path} is not a folder; give a sentence-transformers CrossEncoder model folder"
            )
        from sentence_transformers import CrossEncoder

        self.model = CrossEncoder(str(path), device=device)
        self.batch_size = batch_size
        self.model_id = f"cross-encoder:{path.name}"

    def rerank(self, query: str, hits: Sequence[SearchHit], top_k: int) -> list[SearchHit]:
        if not hits:
            return []
        scores = np.asarray(
            self.model.predict(
                [(query, h.chunk.search_text) for h in hits], batch_size=self.batch_size, show_progress_bar=False
            ),
            dtype=np.float32,
        ).reshape(len(hits), -1)[:, -1]
        order = np.argsort(-scores, kind="stable")[:top_k]
        return _ranked([hits[i] for i in order], scores[order], "cross_encoder")


class LLMReranker:
    name = "llm"

    def __init__(self, chat: ChatModel, max_words: int = 120) -> None:
        self.chat, self.max_words = chat, max_words
        self.prompt = load_prompt("rerank")

    def rerank(self, query: str, hits: Sequence[SearchHit], top_k: int) -> list[SearchHit]:
        if len(hits) <= 1:
            return _ranked(hits[:top_k])
        passages = "\n\n".join(
            f"[{i + 1}] " + " ".join(h.chunk.search_text.split()[: self.max_words]) for i, h in enumerate(hits)
        )
        try:
            reply = self.chat.complete(self.prompt.render(query=query, passages=passages), max_tokens=8 * len(hits))
        except GeneratorError:
            return _ranked(hits[:top_k])  # the first-stage order stands when the LLM is unavailable
        order = list(dict.fromkeys(int(n) - 1 for n in re.findall(r"\d+", reply) if 0 < int(n) <= len(hits)))
        order += [i for i in range(len(hits)) if i not in order]
        return _ranked([hits[i] for i in order[:top_k]])
