"""groundwork tune on a small eval set written by the test (real model, real index): k-fold choice,
held-out figures, the settings written to groundwork.toml, and no re-embedding during the search."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from groundwork.cli import app
from groundwork.config import load_settings
from groundwork.evaluate.candidates import Trial, collect_candidates, fused
from groundwork.evaluate.datasets import load_eval_set
from groundwork.evaluate.index_cache import open_index
from groundwork.evaluate.tune import Arm, fold_of, tune, write_toml
from tests.conftest import write

pytestmark = pytest.mark.slow  # builds a small index with the real model (a few seconds on an idle machine)

TOPICS = {
    "refunds": ("Refunds", "Customers can request a full refund within 30 days of purchase."),
    "shipping": ("Shipping", "Orders ship within two business days from the Leeds warehouse."),
    "security": ("Security", "All customer data is encrypted at rest with AES-256."),
    "office": ("Office hours", "The office is open Monday to Friday from nine to five."),
    "parking": ("Parking", "Visitors park for free in the north car park behind the building."),
    "holidays": ("Holidays", "Staff get 25 days of paid holiday a year plus public holidays."),
    "laptops": ("Laptops", "New staff receive a laptop on their first day from the IT desk."),
    "expenses": ("Expenses", "Travel expenses are claimed in the finance portal within a month."),
}
QUESTIONS = [
    ("How long do I have to ask for my money back?", "refunds"),
    ("When will my order be dispatched?", "shipping"),
    ("Is customer data encrypted?", "security"),
    ("What are the opening hours of the office?", "office"),
    ("Where do visitors leave their car?", "parking"),
    ("How much paid leave do employees get?", "holidays"),
    ("Who gives new starters a computer?", "laptops"),
    ("How do I claim travel costs?", "expenses"),
]


@pytest.fixture(scope="module")
def eval_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tune")
    for name, (title, text) in TOPICS.items():
        write(root / "docs" / f"{name}.md", f"# {title}\n\n{text}\n")
    lines = [json.dumps({"corpus": "../docs"})]
    lines += [json.dumps({"id": f"q{i}", "question": q, "sources": [f"{d}.md"]}) for i, (q, d) in enumerate(QUESTIONS)]
    return write(root / "eval" / "set.jsonl", "\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def arm(eval_set: Path) -> Arm:
    dataset = load_eval_set(eval_set)
    kb = open_index(dataset, load_settings(), eval_set.parent / "cache")
    return Arm("chunks 200", {}, collect_candidates(dataset, kb, depth=20))


def test_folds_are_seeded_and_balanced() -> None:
    a = fold_of(11, 3, seed=7)
    assert a == fold_of(11, 3, seed=7) and a != fold_of(11, 3, seed=8)
    assert sorted(a.count(f) for f in range(3)) == [3, 4, 4]


def test_candidates_reproduce_the_retriever(arm: Arm, eval_set: Path) -> None:
    """The offline ranking of the default setting is the chunk ranking `groundwork search` returns
    (8 one-chunk documents: lists 20 deep hold every match, as the retriever's 100-deep ones do)."""
    kb = open_index(arm.lists.dataset, load_settings(), eval_set.parent / "cache")
    for i, q in enumerate(arm.lists.queries):
        online = [h.chunk.chunk_id for h in kb.search(q.question, top_k=5)]
        assert online == [c for c, _ in fused(arm.lists, i, Trial())][:5]


def test_search_never_re_embeds(arm: Arm, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every setting is scored from the lists collected once: the encoder is not called again."""
    calls = []
    import groundwork.index.embedder as emb

    real = emb.SentenceTransformerEmbedder._encode
    monkeypatch.setattr(
        emb.SentenceTransformerEmbedder, "_encode", lambda self, *a, **k: calls.append(1) or real(self, *a, **k)
    )
    result = tune([arm], Trial(), "ndcg@10", folds=2, seed=0)
    assert calls == []
    assert result.queries == len(QUESTIONS)
    h = result.heldout["ndcg@10"]
    assert 0.0 <= h["default"] <= 1.0 and 0.0 <= h["chosen"] <= 1.0
    assert len(result.fold_choices) == 2 and result.table[0][2] >= result.table[-1][2]


def test_write_toml_keeps_the_users_settings(tmp_path: Path) -> None:
    path = write(
        tmp_path / "groundwork.toml", "# my settings\n[answer]\nabstain_threshold = 0.2\n\n[retrieval]\ntop_k = 7\n"
    )
    values = {"retrieval.mode": "hybrid", "retrieval.fusion": "zscore", "retrieval.bm25_weight": 0.6}
    write_toml(path, values, ["groundwork tune: held-out ndcg@10 0.8000 (default 0.7000)"])
    text = path.read_text()
    data = tomllib.loads(text)
    assert data["answer"]["abstain_threshold"] == 0.2 and data["retrieval"]["top_k"] == 7
    assert data["retrieval"]["fusion"] == "zscore" and "# my settings" in text and "held-out ndcg@10 0.8000" in text
    assert load_settings(path).retrieval.fusion == "zscore"  # what tune writes is a valid settings file
    write_toml(path, values, ["groundwork tune: held-out ndcg@10 0.8100 (default 0.7000)"])
    text = path.read_text()
    assert "0.8100" in text and "0.8000" not in text and "# my settings" in text  # the old notes go


def test_tune_command_reports_and_writes(eval_set: Path, tmp_path: Path) -> None:
    out = tmp_path / "groundwork.toml"
    r = CliRunner().invoke(
        app,
        [
            "tune",
            "--eval-set",
            str(eval_set),
            "--folds",
            "2",
            "--depth",
            "20",
            "--output",
            str(out),
            "--json",
            str(tmp_path / "t.json"),
            "--cache",
            str(eval_set.parent / "cache"),
        ],
        catch_exceptions=False,
    )
    assert r.exit_code == 0, r.output
    assert "held-out ndcg@10" in r.output
    res = json.loads((tmp_path / "t.json").read_text())
    assert set(res["heldout"]["ndcg@10"]) == {"chosen", "default"} and res["queries"] == len(QUESTIONS)
    written = tomllib.loads(out.read_text())
    assert written["retrieval"]["mode"] in ("bm25", "dense", "hybrid")
    assert load_settings(out).retrieval.mode == written["retrieval"]["mode"]


def test_tune_refuses_too_few_questions(eval_set: Path, tmp_path: Path) -> None:
    r = CliRunner().invoke(
        app,
        ["tune", "--eval-set", str(eval_set), "--folds", "20", "--no-write", "--cache", str(eval_set.parent / "cache")],
    )
    assert r.exit_code != 0 and "cannot be split into 20 folds" in r.output
