"""Domain adaptation of the embedding model: MultipleNegativesRankingLoss (Henderson et al. 2017;
in-batch negatives plus an optional mined hard negative per pair) with sentence-transformers' trainer.

Dev nDCG@10 is measured before and after on held-out queries by exact dense retrieval over the whole
corpus, so the gain is the model's, not an index setting's. The output folder is a normal
sentence-transformers model (usable as ``embedder.model``) with a model card, README.md, that records
the data, the steps and the figures.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from groundwork.adapt.pairs import PairSet, cpu_training_args, mine_bm25_negatives, split_by_query, write_dev_qrels
from groundwork.evaluate.metrics import ndcg_at_k, recall_at_k


@dataclass
class AdaptResult:
    out: str
    base: str
    train_pairs: int
    dev_queries: int
    hard_negatives: int
    epochs: int
    steps: int
    train_seconds: float
    before: dict[str, float]
    after: dict[str, float]
    losses: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def dense_metrics(model: Any, ps: PairSet, query_ids: list[str], batch_size: int = 64) -> dict[str, float]:
    """nDCG@10 and recall@10 of exact dense retrieval for ``query_ids`` over ``ps.corpus``."""
    ids = list(ps.corpus)
    docs = model.encode(
        [ps.corpus[i] for i in ids],
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    qs = model.encode(
        [ps.queries[q] for q in query_ids],
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    top = np.argsort(-(qs @ docs.T), axis=1)[:, :10]
    ndcg = [ndcg_at_k([ids[j] for j in row], ps.qrels[q], 10) for q, row in zip(query_ids, top)]
    rec = [recall_at_k([ids[j] for j in row], ps.qrels[q], 10) for q, row in zip(query_ids, top)]
    return {"ndcg@10": float(np.mean(ndcg)), "recall@10": float(np.mean(rec))}


def fine_tune(
    ps: PairSet,
    base: str,
    out: Path,
    epochs: int = 1,
    batch_size: int = 32,
    lr: float = 2e-5,
    dev_fraction: float = 0.2,
    hard_negatives: str = "bm25",
    seed: int = 13,
) -> AdaptResult:
    """Fine-tune ``base`` (a sentence-transformers folder) on ``ps`` and save to ``out``."""
    import torch
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.training_args import BatchSamplers

    torch.manual_seed(seed)
    train, dev = split_by_query(ps, dev_fraction, seed)
    mined = mine_bm25_negatives(train, ps) if hard_negatives == "bm25" else 0
    model = SentenceTransformer(base, device="cpu")
    before = dense_metrics(model, ps, dev) if dev else {}
    cols: dict[str, list[str]] = {"anchor": [p.query for p in train], "positive": [p.positive for p in train]}
    if mined and all(p.negative for p in train):
        cols["negative"] = [p.negative for p in train]  # type: ignore[misc]
    args = SentenceTransformerTrainingArguments(
        **cpu_training_args(out, epochs, batch_size, lr, seed, 5), batch_sampler=BatchSamplers.NO_DUPLICATES
    )
    trainer = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=Dataset.from_dict(cols), loss=MultipleNegativesRankingLoss(model)
    )
    t0 = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - t0
    after = dense_metrics(model, ps, dev) if dev else {}
    out.mkdir(parents=True, exist_ok=True)
    model.save(str(out))
    losses = [float(h["loss"]) for h in trainer.state.log_history if "loss" in h]
    result = AdaptResult(
        str(out),
        base,
        len(train),
        len(dev),
        mined,
        epochs,
        trainer.state.global_step,
        round(seconds, 1),
        before,
        after,
        losses,
    )
    write_model_card(out, result, ps.source)
    # measure the full pipeline on the held-out queries:
    # groundwork eval retrieval --qrels OUT/dev-qrels.tsv --embedder OUT
    write_dev_qrels(out, ps, dev)
    return result


def write_model_card(out: Path, r: AdaptResult, source: str) -> None:
    fig = lambda d: ", ".join(f"{k} {v:.4f}" for k, v in d.items()) or "not measured (no dev split)"  # noqa: E731
    card = f"""# Groundwork fine-tuned embedding model

Base model: `{r.base}`. Trained with `groundwork adapt embeddings` (sentence-transformers,
MultipleNegativesRankingLoss with in-batch negatives{" and one BM25-mined hard negative per pair" if r.hard_negatives else ""}).

## Data
- pairs: {source}
- training pairs: {r.train_pairs} ({r.hard_negatives} with a mined hard negative)
- held-out dev queries: {r.dev_queries} (split by query; none of them was trained on)

## Training
- epochs: {r.epochs}, optimizer steps: {r.steps}, time: {r.train_seconds} s on CPU
- loss (logged every 5 steps): {", ".join(f"{x:.3f}" for x in r.losses[:40])}

## Dev figures (exact dense retrieval over the corpus)
- before: {fig(r.before)}
- after: {fig(r.after)}

Use it with `embedder.model = "{out}"`, compare with `groundwork eval retrieval --embedder {out}`, and move a
knowledge base to it with `groundwork reindex --embedder {out}`.
"""
    (out / "README.md").write_text(card)
    (out / "groundwork_adapt.json").write_text(json.dumps(r.to_dict(), indent=2))
