"""The answer and retrieval caches on the embedded store (real LanceDB, the real model, the app over
HTTP in process): a cached answer or ranking never crosses an access view (tenant, groups); a hit
is audited as cached with the original answer's id, streamed too; an ingest by another process
makes the next answer fresh; ``cache = false`` never hits."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from groundwork.config import load_settings
from groundwork.kb import KnowledgeBase
from groundwork.serve.app import create_app
from groundwork.state.keys import SqliteKeyStore
from tests.serve.server import GW

pytestmark = pytest.mark.slow

Q = "What is the meal allowance?"
FIGURES = {"hr": "£55", "eng": "£70", "globex": "£90"}


def meal(figure: str) -> str:
    return f"# Travel policy\n\nThe meal allowance is {figure} per day when travelling for work.\n"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, embedder):
    root = tmp_path_factory.mktemp("cache")
    kb_path = root / "kb"
    store = SqliteKeyStore(kb_path / "keys.sqlite")
    keys = {
        "hr": store.create("hr", ["query"], ["hr"], "acme")[1],
        "eng": store.create("eng", ["query"], ["eng"], "acme")[1],
        "globex": store.create("g", ["query"], [], "globex")[1],
    }
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("groundwork.wiring.build_embedder", lambda settings: embedder)  # the session's loaded model
        with TestClient(create_app(load_settings(kb=kb_path))) as client:
            kb = client.app.state.service.kb
            for name, tenant, groups in (("hr", "acme", ["hr"]), ("eng", "acme", ["eng"]), ("globex", "globex", [])):
                doc = root / "docs" / name / "meal.md"
                doc.parent.mkdir(parents=True)
                doc.write_text(meal(FIGURES[name]))
                kb.ingest([doc], tenant=tenant, allowed_groups=groups)
            yield client, keys, root


def ask(client: TestClient, key: str, question: str = Q) -> dict:
    r = client.post("/v1/answer", json={"question": question}, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.text
    return r.json()


def test_no_cached_answer_or_ranking_crosses_tenants_or_groups(app) -> None:
    client, keys, _ = app
    first = {who: ask(client, key) for who, key in keys.items()}
    again = {who: ask(client, key, "  what is the MEAL allowance? ") for who, key in keys.items()}
    for who in keys:
        others = [f for name, f in FIGURES.items() if name != who]
        for ans in (first[who], again[who]):
            assert FIGURES[who] in ans["answer"] and not any(f in ans["answer"] for f in others), (who, ans)
        assert first[who]["cached_from"] is None and again[who]["cached_from"] == first[who]["answer_id"]
        assert again[who]["answer_id"] != first[who]["answer_id"] and again[who]["usage"]["source"] == "cached"
    # the retrieval cache: the same query twice, each key sees only its own document
    for who, key in keys.items():
        for _ in range(2):
            hits = client.post("/v1/search", json={"query": Q}, headers={"Authorization": f"Bearer {key}"}).json()
            assert {Path(h["source"]).parent.name for h in hits} == {who}
    metrics = client.get("/metrics").text
    assert 'groundwork_cache_hits_total{cache="answer"} 3.0' in metrics
    assert 'groundwork_cache_hits_total{cache="retrieval"} 3.0' in metrics


def test_a_hit_is_audited_as_cached_with_the_original_id_and_streams_whole(app) -> None:
    client, keys, _ = app
    first = ask(client, keys["eng"], "Is there a meal allowance?")
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "Is there a meal allowance?"}]}
    with client.stream(
        "POST", "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {keys['eng']}"}
    ) as r:
        events = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: {")]
    streamed = "".join(e["choices"][0]["delta"].get("content", "") for e in events)
    assert streamed == first["answer"] and "£70" in streamed
    audit = client.app.state.service.kb.audit
    record = audit.get(events[-1]["answer_id"])
    assert record["cached"] is True and record["cached_from"] == first["answer_id"]
    assert record["prompt_tokens"] == record["completion_tokens"] == 0
    original = audit.get(first["answer_id"])
    assert original["cached"] is False and original["prompt_tokens"] > 0 and original["completion_tokens"] > 0


def test_an_ingest_by_another_process_makes_the_next_answer_fresh(app) -> None:
    client, keys, root = app
    before = ask(client, keys["hr"], "How much is the meal allowance per day?")
    assert "£55" in before["answer"]
    doc = root / "docs" / "hr" / "meal.md"
    doc.write_text(meal("£60"))
    kb = str(client.app.state.service.kb.path)
    args = [GW, "--kb", kb, "ingest", str(doc), "--tenant", "acme", "--allowed-groups", "hr"]
    out = subprocess.run(args, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=300)
    assert out.returncode == 0, out.stderr
    after = ask(client, keys["hr"], "How much is the meal allowance per day?")
    assert "£60" in after["answer"] and "£55" not in after["answer"] and after["cached_from"] is None
    assert after["index_version"] == before["index_version"] + 1
    hits = client.post("/v1/search", json={"query": Q}, headers={"Authorization": f"Bearer {keys['hr']}"}).json()
    assert "£60" in hits[0]["text"]


def test_cache_false_never_hits(app) -> None:
    client, _, _ = app
    svc = client.app.state.service
    kb = KnowledgeBase(settings=load_settings(kb=svc.kb.path, cache=False), embedder=svc.kb.embedder)
    answers = [kb.ask("What is the allowance for meals?") for _ in range(2)]
    assert [a.cached_from for a in answers] == [None, None]
    assert kb.components.answer_cache is None and not hasattr(kb.components.search_pipeline, "counter")
