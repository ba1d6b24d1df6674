"""`groundwork adapt embeddings` on a small synthetic domain, with the real bundled MiniLM."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from groundwork.adapt.pairs import load_documents, mine_bm25_negatives, read_pairs, split_by_query, synthesize_pairs
from groundwork.cli import app
from tests.conftest import write

# A made-up vocabulary the base model has never seen: codes for parts, and what each one is.
PARTS = [
    ("XQ-17", "hydraulic pump seal"),
    ("ZR-42", "rear axle bearing"),
    ("KT-09", "fuel injector nozzle"),
    ("PL-33", "cabin air filter"),
    ("MV-58", "brake caliper piston"),
    ("DN-71", "alternator drive belt"),
    ("WB-26", "coolant thermostat housing"),
    ("FJ-84", "turbocharger wastegate actuator"),
    ("HC-15", "steering rack boot"),
    ("GS-62", "clutch release bearing"),
    ("TY-39", "radiator drain plug"),
    ("BE-90", "oxygen sensor heater"),
]


def test_fine_tuning_writes_a_model_with_card_and_figures(tmp_path: Path) -> None:
    rows = [
        {"query": f"what is part {code}", "positive": f"Part {code} is the {name}. Replace the {name} every service."}
        for code, name in PARTS
        for _ in range(2)
    ]
    pairs = write(tmp_path / "pairs.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    ps = read_pairs(pairs)
    train, dev = split_by_query(ps, 0.25)
    assert dev and not {p.query_id for p in train} & set(dev)
    assert mine_bm25_negatives(train[:3], ps) == 3 and all(p.negative and p.negative != p.positive for p in train[:3])
    out = tmp_path / "model"
    r = CliRunner().invoke(
        app,
        [
            "adapt",
            "embeddings",
            "--pairs",
            str(pairs),
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--dev-fraction",
            "0.25",
            "--out",
            str(out),
            "--json",
            str(tmp_path / "r.json"),
        ],
    )
    assert r.exit_code == 0, r.output
    result = json.loads((tmp_path / "r.json").read_text())
    assert (
        result["steps"] >= 1
        and result["before"]
        and result["after"]
        and result["hard_negatives"] == result["train_pairs"]
    )
    card = (out / "README.md").read_text()
    assert "before: ndcg@10" in card and "after: ndcg@10" in card and "MultipleNegativesRankingLoss" in card
    assert (out / "modules.json").is_file() and (out / "dev-qrels.tsv").read_text().startswith("query-id")
    # the folder is a model Groundwork can use, with its own model id
    from groundwork.config import EmbedderSettings
    from groundwork.index.embedder import SentenceTransformerEmbedder

    emb = SentenceTransformerEmbedder(EmbedderSettings(model=str(out), cache=False))
    assert emb.embed(["part XQ-17"]).shape == (1, 384) and "all-MiniLM" not in emb.model_id


def test_synthesized_pairs_from_headings(tmp_path: Path) -> None:
    doc = write(
        tmp_path / "manual.md",
        "# Pump maintenance\n\n"
        + "Check the seal and the housing for leaks every month. " * 4
        + "\n\n## Replacing the seal\n\n"
        + "Drain the pump, remove the cover and press the new seal in evenly. " * 3,
    )
    ps = synthesize_pairs(load_documents(doc.parent))
    assert {p.query for p in ps.pairs} == {"Pump maintenance", "Replacing the seal"}
    assert all(len(p.positive.split()) >= 20 for p in ps.pairs)
