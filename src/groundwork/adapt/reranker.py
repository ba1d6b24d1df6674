"""Train a cross-encoder reranker offline (no reranker weights can be downloaded here).

A sentence-transformers ``CrossEncoder`` (one output logit, ``num_labels=1``) is initialised from a
local encoder (the bundled MiniLM by default; its classification head starts random) and trained with
binary cross-entropy on (query, passage, label) rows: each judged pair is a positive and the best
BM25-ranked documents not judged relevant are its hard negatives (the recipe of the MS MARCO
cross-encoders, Nogueira & Cho 2019, "Passage re-ranking with BERT"; sentence-transformers
``BinaryCrossEntropyLoss``, https://sbert.net/docs/cross_encoder/training_overview.html).

Queries, not pairs, are split into train and dev (``split_by_query``, seeded). Dev figures: nDCG@10 of
the dev queries' BM25 top ``dev_depth`` documents (rank_bm25 over the pairs' corpus) before and after
reordering them by the trained model, and the model's scoring time per query (ms, p50). The output
folder is a normal CrossEncoder folder, usable as ``rerank.model_path`` with
``rerank.method = "cross-encoder"``, with a model card (README.md) and ``dev-qrels.tsv``, the held-out
judgments, for measuring the whole pipeline on queries it never saw.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from groundwork.adapt.pairs import (
    Pair,
    PairSet,
    bm25_negatives,
    bm25_top,
    cpu_training_args,
    split_by_query,
    write_dev_qrels,
)
from groundwork.evaluate.metrics import ndcg_at_k


@dataclass
class RerankerResult:
    out: str
    base: str
    train_queries: int
    train_rows: int
    dev_queries: int
    epochs: int
    steps: int
    train_seconds: float
    before: dict[str, float]
    after: dict[str, float]
    losses: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def training_rows(train: list[Pair], ps: PairSet, negatives: int, max_rows: int, seed: int) -> dict[str, list]:
    """Columns ``query``, ``passage``, ``label`` (1.0 judged, 0.0 BM25 negative), shuffled (seeded) and
    capped at ``max_rows`` (0 = no cap)."""
    rows: list[tuple[str, str, float]] = []
    negs = bm25_negatives(train, ps, negatives) if negatives else [[] for _ in train]
    for p, ns in zip(train, negs):
        rows.append((p.query, p.positive, 1.0))
        rows += [(p.query, n, 0.0) for n in ns]
        if p.negative:  # a negative given in the pairs file
            rows.append((p.query, p.negative, 0.0))
    random.Random(seed).shuffle(rows)
    rows = rows[:max_rows] if max_rows else rows
    return {"query": [r[0] for r in rows], "passage": [r[1] for r in rows], "label": [r[2] for r in rows]}


def rerank_metrics(model: Any, ps: PairSet, query_ids: list[str], depth: int, batch_size: int = 32) -> dict:
    """nDCG@10 of BM25's top ``depth`` documents for ``query_ids``, first as BM25 ranks them
    (``bm25``) and then as ``model`` reorders them (``reranked``), plus the reordering's time per query
    (``ms_p50``)."""
    tops = bm25_top(ps, [ps.queries[q] for q in query_ids], depth)
    before, after, ms = [], [], []
    for q, top in zip(query_ids, tops):
        t0 = time.perf_counter()
        scores = model.predict(
            [(ps.queries[q], ps.corpus[d]) for d in top], batch_size=batch_size, show_progress_bar=False
        )
        ms.append((time.perf_counter() - t0) * 1000)
        order = [top[i] for i in np.argsort(-np.asarray(scores, dtype=np.float32), kind="stable")]
        before.append(ndcg_at_k(top, ps.qrels[q], 10))
        after.append(ndcg_at_k(order, ps.qrels[q], 10))
    return {"bm25_ndcg@10": float(np.mean(before)), "ndcg@10": float(np.mean(after)), "ms_p50": float(np.median(ms))}


def train_reranker(
    ps: PairSet,
    base: str,
    out: Path,
    epochs: int = 1,
    batch_size: int = 16,
    lr: float = 5e-5,
    negatives: int = 3,
    max_rows: int = 4000,
    max_length: int = 256,
    dev_fraction: float = 0.2,
    dev_depth: int = 30,
    seed: int = 13,
) -> RerankerResult:
    """Train a CrossEncoder from ``base`` (a local model folder) on ``ps`` and save it to ``out``.

    ``negatives``: BM25 hard negatives per judged pair; ``max_rows``: cap on training rows (positives
    plus negatives, 0 = all); ``max_length``: tokens per (query, passage) input; ``dev_depth`` 0 skips the dev figures. Raises OSError when
    ``base`` cannot be loaded or ``out`` written."""
    import torch
    from datasets import Dataset
    from sentence_transformers.cross_encoder import (
        CrossEncoder,
        CrossEncoderTrainer,
        CrossEncoderTrainingArguments,
    )
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    torch.manual_seed(seed)
    train, dev = split_by_query(ps, dev_fraction, seed)
    cols = training_rows(train, ps, negatives, max_rows, seed)
    model = CrossEncoder(base, num_labels=1, max_length=max_length, device="cpu")
    args = CrossEncoderTrainingArguments(**cpu_training_args(out, epochs, batch_size, lr, seed, 10))
    trainer = CrossEncoderTrainer(
        model=model, args=args, train_dataset=Dataset.from_dict(cols), loss=BinaryCrossEntropyLoss(model)
    )
    t0 = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - t0
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    after = rerank_metrics(model, ps, dev, dev_depth) if dev and dev_depth else {}
    before = {"ndcg@10": after.pop("bm25_ndcg@10")} if after else {}
    result = RerankerResult(
        str(out),
        base,
        len({p.query_id for p in train}),
        len(cols["label"]),
        len(dev),
        epochs,
        trainer.state.global_step,
        round(seconds, 1),
        before,
        after,
        [float(h["loss"]) for h in trainer.state.log_history if "loss" in h],
    )
    _write_card(out, result, ps, dev, negatives, dev_depth)
    return result


def _write_card(out: Path, r: RerankerResult, ps: PairSet, dev: list[str], negatives: int, depth: int) -> None:
    fig = lambda d: ", ".join(f"{k} {v:.4f}" for k, v in d.items()) or "not measured (no dev split)"  # noqa: E731
    card = f"""# Groundwork cross-encoder reranker

Base model: `{r.base}` (classification head trained from scratch). Trained with
`groundwork adapt reranker` (sentence-transformers CrossEncoder, BinaryCrossEntropyLoss; each judged
pair is a positive with up to {negatives} BM25-mined hard negatives).

## Data
- pairs: {ps.source}
- training queries: {r.train_queries}, training rows (positives + negatives): {r.train_rows}
- held-out dev queries: {r.dev_queries} (split by query; none of them was trained on)

## Training
- epochs: {r.epochs}, optimizer steps: {r.steps}, time: {r.train_seconds} s on CPU
- loss (logged every 10 steps): {", ".join(f"{x:.3f}" for x in r.losses[:40])}

## Dev figures (BM25 top {depth} documents of each dev query, reordered)
- BM25 order: {fig(r.before)}
- reranked: {fig(r.after)}

Use it with `rerank.method = "cross-encoder"` and `rerank.model_path = "{out}"`; measure the whole
pipeline on the held-out queries with `groundwork eval compare --qrels {out / "dev-qrels.tsv"} ...`.
"""
    (out / "README.md").write_text(card)
    (out / "groundwork_adapt.json").write_text(json.dumps(r.to_dict(), indent=2))
    write_dev_qrels(out, ps, dev)
