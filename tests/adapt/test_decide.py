from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from groundwork.cli import app
from tests.conftest import write


def test_decide_prints_a_table_and_recommendation_with_complete_json(tmp_path: Path) -> None:
    write(
        tmp_path / "docs" / "parking.md",
        "# Parking\n\nVisitors park in the north car park, next to the main entrance.\n",
    )
    write(
        tmp_path / "docs" / "canteen.md",
        "# Canteen\n\nThe canteen serves lunch from noon until two o'clock every weekday.\n",
    )
    rows = [
        {"corpus": "docs"},
        {"question": "Where do visitors park?", "answer": "north car park", "sources": ["parking.md"]},
        {"question": "When does the canteen serve lunch?", "answer": "from noon", "sources": ["canteen.md"]},
        {"question": "What is the capital of Peru?", "answer": "", "sources": []},
    ]
    eval_set = write(tmp_path / "set.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "decide.json"
    r = CliRunner().invoke(
        app,
        [
            "decide",
            "--eval-set",
            str(eval_set),
            "--json",
            str(out),
            "--plot",
            str(tmp_path / "d.png"),
            "--cache",
            str(tmp_path / "cache"),
            "--price-in",
            "0.5",
            "--price-out",
            "1.5",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "Recommendation:" in r.output and "1. RAG:" in r.output
    d = json.loads(out.read_text())
    assert set(d["arms"]) == {"prompt-only", "rag-bm25", "rag-dense", "rag-hybrid", "rag-hybrid+mmr"}
    for name, arm in d["arms"].items():
        assert {
            "containment",
            "abstention_null",
            "false_abstention",
            "answer_latency_ms_p50",
            "cost_per_1k_queries_usd",
        } <= set(arm), name
        if name != "prompt-only":
            assert {"ndcg@10", "recall@10", "hits@10", "faithfulness"} <= set(arm)
    assert d["arms"]["prompt-only"]["containment"] == 0.0  # the extractive generator cannot answer without documents
    assert d["arms"]["rag-hybrid"]["containment"] == 1.0 and d["arms"]["rag-hybrid"]["abstention_null"] == 1.0
    assert d["recommendation"]["choice"].startswith("rag-") and len(d["recommendation"]["steps"]) == 4
    assert (tmp_path / "d.png").stat().st_size > 1000
