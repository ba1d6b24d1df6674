"""Drift monitoring: PSI and KS on known samples; then the real thing on a small live knowledge base:
answers write their top-1 score and query summary to the audit log, a change of topic in recent
traffic is drift, a deleted document is an eval regression (exit 1 of `groundwork monitor run`), and
the latest run is served as Prometheus gauges."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from groundwork.cli import app as cli
from groundwork.config import load_settings
from groundwork.evaluate.monitor import psi, psi_noise, traffic_drift
from groundwork.kb import KnowledgeBase
from groundwork.serve.app import create_app
from groundwork.state.monitor import query_summary

pytestmark = pytest.mark.slow  # one ingest, two answers and two monitor runs, shared by the module

DOCS = {
    "parking.md": "# Parking\n\nVisitors park in the north car park, next to the main entrance. Staff use the south garage.\n",
    "canteen.md": "# Canteen\n\nThe canteen serves lunch from noon until two o'clock every weekday.\n",
    "holidays.md": "# Holidays\n\nThe office closes between Christmas and New Year; staff get 25 days of leave.\n",
}
PARKING_QS = [f"Where can {who} park {when}?" for who in ("visitors", "staff", "guests", "contractors")
              for when in ("today", "at night", "on Monday")]  # fmt: skip
CANTEEN_QS = [f"When does the canteen serve {meal} {when}?" for meal in ("lunch", "food", "meals", "soup")
              for when in ("today", "on Friday", "this week")]  # fmt: skip


def test_psi_is_zero_for_the_same_distribution_and_large_for_a_shift() -> None:
    rng = np.random.default_rng(0)
    ref = rng.normal(0, 1, 2000)
    assert psi(ref, rng.normal(0, 1, 2000)) < 3 * psi_noise(2000, 2000)  # sampling noise only
    assert psi(ref, rng.normal(1, 1, 2000)) > 0.25  # a shift of one standard deviation
    assert np.isfinite(psi(ref, np.full(100, 50.0)))  # every value in one bin: still finite


def test_traffic_drift_compares_the_newest_window_with_the_one_before() -> None:
    rng = np.random.default_rng(1)
    old = [{"top1_score": float(s), "abstained": False} for s in rng.normal(0.6, 0.05, 50)]
    new = [{"top1_score": float(s), "abstained": i % 2 == 0} for i, s in enumerate(rng.normal(0.3, 0.05, 50))]
    t = traffic_drift(new + old, 50, 50)  # newest first
    assert (t["current_n"], t["reference_n"]) == (50, 50)
    assert t["top1_psi"] > 1 and t["top1_ks_pvalue"] < 1e-6
    assert (t["abstention_rate"], t["abstention_rate_reference"]) == (0.5, 0.0)
    assert len(t["histogram"]["current"]) == len(t["histogram"]["reference"]) == 10
    stable = [{"top1_score": float(s)} for s in rng.normal(0.6, 0.05, 400)]
    same = traffic_drift(stable, 200, 200)
    assert same["top1_psi"] < 0.2 + same["top1_psi_noise"] and same["top1_ks_pvalue"] > 0.01
    assert "top1_psi" not in traffic_drift(old[:15], 10, 10)  # too few in the reference window


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("monitor")
    corpus = root / "docs"
    corpus.mkdir()
    for name, text in DOCS.items():
        (corpus / name).write_text(text)
    kb_dir = root / "kb"
    settings = load_settings(kb=kb_dir, **{"monitor.window": 12, "monitor.reference": 12, "retrieval.mode": "dense"})
    kb = KnowledgeBase(settings=settings)
    kb.ingest([corpus])
    # The reference window, then a change of topic: audit records as `ask` writes them (two real
    # answers check that it does), the others with the real model's embeddings but no answer run.
    questions = PARKING_QS[:11] + CANTEEN_QS[:11]
    vectors = kb.embedder.embed(questions)
    chunk_vectors = kb.embedder.embed(list(DOCS.values()))
    for i, (q, v) in enumerate(zip(questions, vectors, strict=True)):
        kb.audit.write({"answer_id": f"r{i:02d}", "created_at": f"2026-01-01T00:00:{i:02d}", "caller": "cli",
                        "tenant": None, "access_groups": None, "question": q, "abstained": False,
                        "top1_score": float((chunk_vectors @ v).max()), "query_summary": query_summary(v)})  # fmt: skip
    kb.ask(PARKING_QS[11].replace("park", "leave the car"))
    kb.ask(CANTEEN_QS[11])
    eval_set = root / "gold.jsonl"
    rows = [{"live": True}, {"id": "g1", "question": "Where do visitors park?", "sources": [str(corpus / "parking.md")]},
            {"id": "g2", "question": "When is lunch served?", "sources": [str(corpus / "canteen.md")]}]  # fmt: skip
    eval_set.write_text("".join(json.dumps(r) + "\n" for r in rows))
    toml = root / "groundwork.toml"
    toml.write_text(
        f'kb = "{kb_dir}"\n[retrieval]\nmode = "dense"\n'
        f'[monitor]\neval_set = "{eval_set}"\nwindow = 12\nreference = 12\n'
    )
    return kb, toml, corpus


def test_answers_record_what_drift_is_measured_on(live) -> None:
    kb, _, _ = live
    [record] = kb.audit.list(1)
    assert record["top1_score"] == record["retrieved"][0]["score"]
    assert len(record["query_summary"]) == 8 and all(isinstance(x, float) for x in record["query_summary"])


def test_monitor_run_finds_the_change_of_topic_and_a_regression(live) -> None:
    kb, toml, corpus = live
    run = CliRunner().invoke(cli, ["--config", str(toml), "monitor", "run", "--json"])
    first = json.loads(run.output)
    assert first["baseline"] and first["eval"]["questions"] == 2
    assert first["eval"]["metrics"]["recall@10"] == 1.0
    t = first["traffic"]
    assert (t["current_n"], t["reference_n"]) == (12, 12)
    assert (
        t["embedding_psi"] > 0.2 + t["embedding_psi_noise"] and "embedding_psi" in first["drift"]
    )  # parking questions, then canteen ones
    assert run.exit_code == 1  # drift is an alert
    kb.delete([str(corpus / "canteen.md")])  # the gold question g2 loses its answer
    second = json.loads(CliRunner().invoke(cli, ["--config", str(toml), "monitor", "run", "--json"]).output)
    assert not second["baseline"] and second["baseline_eval"]["recall@10"] == 1.0
    assert second["eval"]["metrics"]["recall@10"] == 0.5 and "recall@10" in second["eval_regressions"]

    with TestClient(create_app(load_settings(toml, **{"monitor.interval_s": 0.5}))) as c:
        text = c.get("/metrics").text
        body = c.get("/v1/monitor").json()  # no key: 401
        deadline = time.time() + 120
        while len(kb.components.monitor.list()) < 3 and time.time() < deadline:  # the schedule inside serve
            time.sleep(0.2)
    assert len(kb.components.monitor.list()) >= 3
    assert 'groundwork_monitor_eval{metric="recall@10"} 0.5' in text
    assert 'groundwork_monitor_eval_baseline{metric="recall@10"} 1.0' in text
    assert "groundwork_monitor_embedding_psi " in text and "groundwork_monitor_alert 1.0" in text
    assert "error" in body
    rules = (Path(__file__).resolve().parents[2] / "deploy" / "alert-rules.yml").read_text()
    named = set(re.findall(r"groundwork_monitor_\w+", rules))
    assert named and all(f"{name} " in text or f"{name}{{" in text for name in named)  # every alert has its gauge
