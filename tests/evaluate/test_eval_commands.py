"""eval retrieval / answers / compare / gate on a small corpus written by the test (real model, real index)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from groundwork.cli import app
from tests.conftest import write

runner = CliRunner()

DOCS = {
    "refunds.md": "# Refunds\n\nCustomers can request a full refund within 30 days of purchase.",
    "shipping.md": "# Shipping\n\nOrders ship within two business days from the Leeds warehouse.",
    "security.md": "# Security\n\nAll customer data is encrypted at rest with AES-256.",
    "office.md": "# Office\n\nThe office is open Monday to Friday from nine to five.",
    "parking.md": "# Parking\n\nVisitors park for free in the north car park.",
}
QUESTIONS = [
    ("How many days do customers have to request a refund?", "30 days", "refunds.md"),
    ("How fast do orders ship?", "two business days", "shipping.md"),
    ("How is customer data encrypted?", "AES-256", "security.md"),
    ("When is the office open?", "Monday to Friday", "office.md"),
    ("Where can visitors park?", "north car park", "parking.md"),
    ("What is the boiling point of nitrogen?", "", None),
]


@pytest.fixture
def eval_set(tmp_path: Path) -> Path:
    for name, text in DOCS.items():
        write(tmp_path / "docs" / name, text + "\n")
    lines = [json.dumps({"corpus": "../docs"})]
    for i, (q, a, src) in enumerate(QUESTIONS):
        lines.append(json.dumps({"id": f"q{i}", "question": q, "answer": a, "sources": [src] if src else []}))
    return write(tmp_path / "eval" / "set.jsonl", "\n".join(lines) + "\n")


def gw(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_retrieval_and_answers_json(eval_set: Path, tmp_path: Path) -> None:
    cache = str(tmp_path / "cache")
    r = gw(
        "eval",
        "retrieval",
        "--eval-set",
        str(eval_set),
        "--mode",
        "hybrid",
        "--json",
        str(tmp_path / "r.json"),
        "--cache",
        cache,
    )
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "r.json").read_text())
    for key in (
        "ndcg@10",
        "recall@10",
        "recall@100",
        "mrr@10",
        "map@10",
        "hits@4",
        "hits@10",
        "latency_ms_p50",
        "latency_ms_p95",
    ):
        assert key in res
    assert res["queries"] == 5 and res["hits@4"] == 1.0
    built = list((tmp_path / "cache").iterdir())
    gw("eval", "retrieval", "--eval-set", str(eval_set), "--mode", "bm25", "--cache", cache)
    assert list((tmp_path / "cache").iterdir()) == built  # same corpus and chunking: the index is reused

    r = gw("eval", "answers", "--eval-set", str(eval_set), "--json", str(tmp_path / "a.json"), "--cache", cache)
    assert r.exit_code == 0, r.output
    a = json.loads((tmp_path / "a.json").read_text())
    assert a["containment"] >= 0.8 and a["abstention_null"] == 1.0 and a["faithfulness"] == 1.0
    assert a["citation_precision"] >= 0.8 and 0 < a["bertscore_f1"] <= 1 and a["bleu"] is not None
    assert "roberta-large" in a["bertscore_note"] and "MiniLM" in r.output


def test_compare_writes_table_json_and_chart(eval_set: Path, tmp_path: Path) -> None:
    r = gw(
        "eval",
        "compare",
        "--eval-set",
        str(eval_set),
        "--modes",
        "bm25,dense,hybrid",
        "--cache",
        str(tmp_path / "c"),
        "--json",
        str(tmp_path / "cmp.json"),
        "--plot",
        str(tmp_path / "cmp.png"),
    )
    assert r.exit_code == 0, r.output
    assert set(json.loads((tmp_path / "cmp.json").read_text())) == {"bm25", "dense", "hybrid"}
    assert (tmp_path / "cmp.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "bm25" in r.output and "hybrid" in r.output


def test_gate_passes_on_baseline_and_fails_on_a_worse_configuration(eval_set: Path, tmp_path: Path) -> None:
    cache, baseline = str(tmp_path / "cache"), tmp_path / "eval" / "baseline.json"
    # a second eval set over the same corpus, recorded in the same baseline ("also")
    rows = eval_set.read_text().splitlines()
    extra = write(tmp_path / "eval" / "extra.jsonl", "\n".join([rows[0], rows[1], rows[-1]]) + "\n")
    r = gw(
        "eval", "gate", "--baseline", str(baseline), "--eval-set", str(eval_set), "--eval-set", str(extra),
        "--update", "--cache", cache,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    recorded = json.loads(baseline.read_text())
    assert recorded["eval_set"] == "set.jsonl"
    assert [a["eval_set"] for a in recorded["also"]] == ["extra.jsonl"]
    assert recorded["also"][0]["metrics"]["abstention_null"] == 1.0
    r = gw("eval", "gate", "--baseline", str(baseline), "--cache", cache)
    assert r.exit_code == 0 and "extra: containment" in r.output, r.output

    worse = write(tmp_path / "worse.toml", "[answer]\nabstain_threshold = 0.95\n[retrieval]\nmode = 'bm25'\n")
    r = gw("eval", "gate", "--baseline", str(baseline), "--config", str(worse), "--cache", cache)
    assert r.exit_code == 1
    assert "REGRESSION" in r.output and "false_abstention" in r.output
    assert "extra: containment" in r.output.split("gate failed:")[-1]  # the extra set is gated too


def test_index_cache_key_depends_on_corpus_location(eval_set: Path, tmp_path: Path) -> None:
    import shutil

    from groundwork.config import load_settings
    from groundwork.evaluate.datasets import load_eval_set
    from groundwork.evaluate.index_cache import index_key

    copy = tmp_path / "elsewhere"
    shutil.copytree(tmp_path / "docs", copy / "docs")
    shutil.copytree(tmp_path / "eval", copy / "eval")
    settings = load_settings()
    a, b = load_eval_set(eval_set), load_eval_set(copy / "eval" / "set.jsonl")
    assert a.fingerprint() == b.fingerprint()  # same bytes ...
    assert index_key(a, settings) != index_key(b, settings)  # ... but doc ids are paths: another index
    assert index_key(a, settings) == index_key(load_eval_set(eval_set), settings)


def test_retrieval_ranks_top_k_distinct_documents(tmp_path: Path) -> None:
    refunds = " ".join(f"Refund rule {i}: customers get their money back within {i + 10} days." for i in range(12))
    records = [
        {"_id": "long", "title": "Refund handbook", "text": refunds},
        {"_id": "faq", "title": "FAQ", "text": "Refunds are paid to the card used for the purchase."},
        {"_id": "ship", "title": "Shipping", "text": "Orders ship within two business days."},
        {"_id": "office", "title": "Office", "text": "The office is open Monday to Friday."},
    ]
    corpus = write(tmp_path / "corpus.jsonl", "\n".join(json.dumps(r) for r in records) + "\n")
    queries = write(tmp_path / "queries.jsonl", json.dumps({"_id": "q1", "text": "how do refunds work"}) + "\n")
    qrels = write(tmp_path / "qrels.tsv", "query-id\tcorpus-id\tscore\nq1\tlong\t1\nq1\tfaq\t1\n")
    small = write(tmp_path / "small.toml", "[chunking]\nstrategy = 'fixed'\nchunk_tokens = 32\noverlap_tokens = 0\n")
    beir = ["--corpus", str(corpus), "--queries", str(queries), "--qrels", str(qrels), "--cache", str(tmp_path / "c")]
    results = {}
    for group_by in ("document", "chunk"):
        out = tmp_path / f"{group_by}.json"
        args = ["eval", "retrieval", *beir, "--config", str(small), "--top-k", "3", "--json", str(out)]
        r = gw(*args, "--group-by", group_by)
        assert r.exit_code == 0, r.output
        results[group_by] = json.loads(out.read_text())
    doc, chunk = results["document"], results["chunk"]
    assert doc["config"]["group_by"] == "document" and chunk["config"]["group_by"] == "chunk"
    assert doc["distinct_docs"] == 3 and chunk["distinct_docs"] < 3  # the handbook takes several chunk places
    assert doc["recall@10"] == 1.0 and doc["ndcg@10"] >= chunk["ndcg@10"]
    r = gw("eval", "retrieval", *beir, "--config", str(small), "--top-k", "3", "--json", str(tmp_path / "d.json"))
    assert json.loads((tmp_path / "d.json").read_text())["config"]["group_by"] == "document"  # the default

    mh_corpus = write(tmp_path / "mh.json", json.dumps([{"url": "u1", "title": "T", "body": "Refunds take days."}]))
    mh_queries = write(
        tmp_path / "mhq.json",
        json.dumps(
            [
                {
                    "query": "refunds?",
                    "answer": "days",
                    "question_type": "inference_query",
                    "evidence_list": [{"url": "u1", "fact": "Refunds take days."}],
                }
            ]
        ),
    )
    mh = ["--format", "multihop-rag", "--corpus", str(mh_corpus), "--queries", str(mh_queries)]
    r = gw("eval", "retrieval", *mh, "--cache", str(tmp_path / "c"), "--group-by", "document")
    assert r.exit_code == 2 and "chunk-level" in r.output
    r = gw("eval", "retrieval", *beir, "--group-by", "page")
    assert r.exit_code == 2 and "group_by must be one of" in r.output
