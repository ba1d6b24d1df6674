"""Feedback into quality: "not helpful" feedback and poorly grounded answers open review items; an admin
resolves one with the correct answer and new knowledge; the item becomes an eval-set question and its
new document is answerable by a key of the chosen group only. The real app (FastAPI's TestClient, its
lifespan included), the real embedding model, LanceDB and SQLite files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from groundwork.cli import app as cli
from groundwork.config import load_settings
from groundwork.evaluate.datasets import load_eval_set
from groundwork.evaluate.retrieval import evaluate_retrieval
from groundwork.kb import KnowledgeBase
from groundwork.serve.app import create_app
from groundwork.state.keys import SqliteKeyStore
from groundwork.types import Access

pytestmark = pytest.mark.slow  # one ingest and the model load, shared by the module

PARKING = "# Parking\n\nVisitors park in the north car park, next to the main entrance.\n"
QUESTION = "What is the guest wifi password?"
KNOWLEDGE = "The guest wifi network is called Lobby and its password is Kestrel-4821, changed every January."


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    kb_dir = tmp_path_factory.mktemp("reviews") / "kb"
    src = kb_dir.parent / "parking.md"
    src.write_text(PARKING)
    KnowledgeBase(settings=load_settings(kb=kb_dir)).ingest([src], tenant="acme", allowed_groups=["hr", "eng"])
    keys = SqliteKeyStore(kb_dir / "keys.sqlite")
    secrets = {
        "hr-admin": keys.create("hr-admin", ["query", "admin"], ["hr"], "acme")[1],
        "eng": keys.create("eng-user", ["query"], ["eng"], "acme")[1],
        "hr": keys.create("hr-user", ["query"], ["hr"], "acme")[1],
        "globex-admin": keys.create("globex-admin", ["query", "admin"], ["hr"], "globex")[1],
    }
    with TestClient(create_app(load_settings(kb=kb_dir))) as client:
        yield client, secrets, kb_dir


def _h(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def opened(served):
    """The hr admin asks, and marks the answer not helpful twice: one review item."""
    c, k, _ = served
    ans = c.post("/v1/answer", json={"question": QUESTION}, headers=_h(k["hr-admin"])).json()
    for comment in ("it does not say the password", None):
        r = c.post("/v1/feedback", json={"answer_id": ans["answer_id"], "rating": "down", "comment": comment},
                   headers=_h(k["hr-admin"]))  # fmt: skip
        assert r.status_code == 200
    return ans


def test_not_helpful_feedback_opens_one_review_with_the_answer_and_its_asker(served, opened) -> None:
    c, k, _ = served
    items = c.get("/v1/reviews", headers=_h(k["hr-admin"])).json()
    [item] = [i for i in items if i["answer_id"] == opened["answer_id"]]
    assert (item["kind"], item["status"], item["tenant"], item["groups"]) == ("not_helpful", "open", "acme", ["hr"])
    assert item["question"] == QUESTION and item["answer"] == opened["answer"]
    assert item["reasons"] == ["it does not say the password", "marked not helpful"]
    assert item["asker"] == "hr-admin"
    assert all(e["doc_id"] for e in item["evidence"])
    assert not any(secret in json.dumps(items) for secret in k.values())  # never a key
    assert c.get("/v1/reviews", headers=_h(k["globex-admin"])).json() == []  # another tenant's admin
    assert c.get(f"/v1/reviews/{item['review_id']}", headers=_h(k["globex-admin"])).status_code == 404
    assert c.get("/v1/reviews", headers=_h(k["hr"])).status_code == 403  # not an admin key
    # monitor runs aggregate every tenant's traffic: a tenant's admin may not read them
    assert c.get("/v1/monitor", headers=_h(k["globex-admin"])).status_code == 403


def test_a_reviewer_writes_only_where_the_key_may_write(served, opened) -> None:
    c, k, _ = served
    [item] = c.get("/v1/reviews", headers=_h(k["hr-admin"])).json()
    url = f"/v1/reviews/{item['review_id']}/resolve"
    for document, status in (
        ({"text": KNOWLEDGE, "groups": ["eng"]}, 403),  # a group the reviewer's key is not in
        ({"text": KNOWLEDGE, "tenant": "globex", "groups": ["hr"]}, 403),  # another tenant
        ({"text": KNOWLEDGE, "groups": ["../x"]}, 422),
    ):
        assert c.post(url, json={"document": document}, headers=_h(k["hr-admin"])).status_code == status
    assert c.post(url, json={}, headers=_h(k["hr-admin"])).status_code == 422  # nothing given
    other = c.post(url, json={"answer": "x"}, headers=_h(k["globex-admin"]))
    assert other.status_code == 404
    assert c.get(f"/v1/reviews/{item['review_id']}", headers=_h(k["hr-admin"])).json()["status"] == "open"


@pytest.fixture(scope="module")
def resolved(served, opened):
    c, k, _ = served
    [item] = c.get("/v1/reviews", headers=_h(k["hr-admin"])).json()
    body = {"answer": "Kestrel-4821", "document": {"text": KNOWLEDGE, "title": "Guest wifi", "groups": ["hr"]}}
    r = c.post(f"/v1/reviews/{item['review_id']}/resolve", json=body, headers=_h(k["hr-admin"]))
    assert r.status_code == 200, r.text
    return r.json()


def test_a_resolved_review_is_a_question_of_the_eval_set(served, resolved, tmp_path: Path) -> None:
    c, k, kb_dir = served
    doc_id = resolved["resolution"]["document"]["doc_id"]
    assert doc_id == f"review://acme/hr/{resolved['review_id']}.md"
    assert resolved["status"] == "resolved" and resolved["resolution"]["reviewer"] == "hr-admin"
    again = c.post(f"/v1/reviews/{resolved['review_id']}/resolve", json={"answer": "y"}, headers=_h(k["hr-admin"]))
    assert again.status_code == 409
    out = tmp_path / "eval" / "reviewed.jsonl"
    result = CliRunner().invoke(cli, ["--kb", str(kb_dir), "reviews", "export", "--out", str(out)])
    assert result.exit_code == 0, result.output
    dataset = load_eval_set(out)
    [q] = [q for q in dataset.queries if q.qid == f"review-{resolved['review_id']}"]
    assert (q.question, q.answer, q.qrels) == (QUESTION, "Kestrel-4821", {doc_id: 1})
    assert q.access == Access("acme", ("hr",))  # asked as the asker would
    live = KnowledgeBase(settings=load_settings(kb=kb_dir))
    assert evaluate_retrieval(dataset, live)["recall@10"] == 1.0  # the new document answers it


def test_the_new_document_is_versioned_and_answerable_by_its_group_only(served, resolved) -> None:
    c, k, _ = served
    doc_id = resolved["resolution"]["document"]["doc_id"]
    versions = c.get("/v1/versions", headers=_h(k["hr"])).json()
    assert resolved["resolution"]["document"]["version"] == max(v["version"] for v in versions)
    hr = c.post("/v1/answer", json={"question": QUESTION}, headers=_h(k["hr"])).json()
    assert "Kestrel-4821" in hr["answer"] and any(x["doc_id"] == doc_id for x in hr["citations"])
    for who in ("eng", "globex-admin"):
        payloads = [
            c.post("/v1/answer", json={"question": QUESTION}, headers=_h(k[who])).json(),
            c.post("/v1/search", json={"query": QUESTION, "top_k": 50}, headers=_h(k[who])).json(),
            c.get("/v1/documents", headers=_h(k[who])).json(),
        ]
        assert "Kestrel" not in json.dumps(payloads) and doc_id not in json.dumps(payloads)
