"""`groundwork adapt reranker`: trains a CrossEncoder on pairs with BM25 hard negatives, saves a model
folder that `rerank.method = "cross-encoder"` loads and that reorders what it was trained on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from groundwork.cli import app
from groundwork.retrieve.rerank import CrossEncoderReranker
from groundwork.types import Chunk, SearchHit
from tests.conftest import write
from tests.tiny_models import build_tiny_cross_encoder

POS = "visitors park in the north car park"
NEG = "the south garage is not for visitors"
PAIRS = [
    ("where do visitors park", POS),
    ("is the south garage for visitors", NEG),
    ("where is the north car park", "the north car park is by the garage"),
    ("what is the parking policy", "the parking policy is in the system prompt"),
]


@pytest.mark.slow
def test_adapt_reranker_trains_saves_and_reorders_a_known_pair(tmp_path: Path) -> None:
    base = build_tiny_cross_encoder(tmp_path / "base")
    pairs = write(tmp_path / "pairs.jsonl", "".join(json.dumps({"query": q, "positive": p}) + "\n" for q, p in PAIRS))
    out = tmp_path / "reranker"
    r = CliRunner().invoke(
        app,
        [
            "adapt",
            "reranker",
            "--pairs",
            str(pairs),
            "--base",
            str(base),
            "--negatives",
            "2",
            "--epochs",
            "30",
            "--batch-size",
            "12",
            "--lr",
            "3e-3",
            "--dev-fraction",
            "0",
            "--out",
            str(out),
            "--json",
            str(tmp_path / "r.json"),
        ],
    )
    assert r.exit_code == 0, r.output
    d = json.loads((tmp_path / "r.json").read_text())
    # 4 positives + 2 BM25 negatives each (the other passages that share words with the query)
    assert d["train_rows"] == 12 and d["steps"] == 30 and d["train_queries"] == 4
    assert "BinaryCrossEntropyLoss" in (out / "README.md").read_text()
    hits = [
        SearchHit(Chunk(cid, "d", "s", 0, text, "h"), score=1.0 / r, rank=r)
        for r, (cid, text) in enumerate([("neg", NEG), ("pos", POS)], 1)
    ]
    ranked = CrossEncoderReranker(out).rerank("where do visitors park", hits, top_k=2)
    assert [h.chunk.chunk_id for h in ranked] == ["pos", "neg"]
    assert ranked[0].scores["cross_encoder"] > ranked[1].scores["cross_encoder"]


def test_adapt_reranker_needs_one_source(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["adapt", "reranker", "--out", str(tmp_path / "m")])
    assert r.exit_code != 0 and "--pairs" in r.output
