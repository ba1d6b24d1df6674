"""The real server over HTTP: upload -> job -> search -> answer -> delete, keys and scopes, the
OpenAI client, feedback and audit, metrics."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import openai
import pytest

from tests.serve.server import Server, create_key, wait_job

pytestmark = pytest.mark.slow

PARKING = "# Parking\n\nVisitors park in the north car park, next to the main entrance. Staff use the south garage.\n"
CANTEEN = "# Canteen\n\nThe canteen serves lunch from noon until two o'clock every weekday.\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("serve")
    kb = root / "kb"
    keys = {
        "admin": create_key(kb, "ops", "query,ingest,admin"),
        "query": create_key(kb, "reader", "query"),
        "ingest": create_key(kb, "loader", "ingest"),
    }
    srv = Server(kb).start()
    yield srv, keys, root
    srv.stop()


def upload(client: httpx.Client, files: dict[str, str], groups: str | None = None) -> dict:
    parts = [("files", (name, text.encode(), "text/markdown")) for name, text in files.items()]
    r = client.post("/v1/documents", files=parts, data={"allowed_groups": groups} if groups else None)
    assert r.status_code == 202, r.text
    return wait_job(client, r.json()["job_id"])


def test_end_to_end_upload_search_answer_delete(server) -> None:
    srv, keys, _ = server
    admin = srv.client(keys["admin"])
    job = upload(admin, {"parking.md": PARKING, "canteen.md": CANTEEN})
    assert job["status"] == "done" and job["done"] == job["total"] == 2
    assert {r["file"]: r["status"] for r in job["results"]} == {"parking.md": "added", "canteen.md": "added"}

    hits = admin.post("/v1/search", json={"query": "where do visitors park", "top_k": 3}).json()
    assert Path(hits[0]["source"]).name == "parking.md" and {"bm25", "dense"} <= set(hits[0]["scores"])
    ans = admin.post("/v1/answer", json={"question": "Where do visitors park?"}).json()
    assert (
        not ans["abstained"]
        and "north car park" in ans["answer"]
        and "[1]" in ans["answer"]
        and len(ans["answer_id"]) == 32
    )
    assert Path(ans["citations"][0]["source"]).name == "parking.md"

    docs = admin.get("/v1/documents").json()
    assert docs["total"] == 2 and {d["type"] for d in docs["items"]} == {"md"}
    doc_id = next(d["doc_id"] for d in docs["items"] if d["source"].endswith("parking.md"))
    detail = admin.get(f"/v1/documents/{doc_id}").json()
    assert detail["chunk_list"] and "north car park" in detail["chunk_list"][0]["text"]

    r = admin.delete(f"/v1/documents/{doc_id}")
    assert r.status_code == 200 and r.json()["deleted"] is True
    assert admin.get(f"/v1/documents/{doc_id}").status_code == 404
    hits = admin.post("/v1/search", json={"query": "where do visitors park", "top_k": 5}).json()
    assert all(not h["source"].endswith("parking.md") for h in hits)
    gone = admin.post("/v1/answer", json={"question": "Where do visitors park?"}).json()
    assert (
        all(not c["source"].endswith("parking.md") for c in gone["citations"])
        and "north car park" not in gone["answer"]
    )
    versions = admin.get("/v1/versions").json()
    # a restricted key sees the versions that changed documents it can see, without every tenant's
    # totals; a deleted document can no longer be checked against the key's access: it is not listed
    assert versions and all(v["documents"] is None for v in versions)
    assert all(doc_id not in v["changed_doc_ids"] for v in versions)


def test_search_grouped_by_document(server) -> None:
    srv, keys, _ = server
    admin = srv.client(keys["admin"])
    sections = "".join(
        f"## Day {i}\n\nOn day {i} the night bus left the depot at ten in the evening, drove through the old town "
        "and the harbour, and stopped at every station on the line until two.\n\n"
        for i in range(8)
    )
    upload(
        admin, {"bus-log.md": f"# Night bus log\n\n{sections}", "tram.md": "# Tram\n\nThe night tram runs hourly.\n"}
    )
    q = {"query": "when does the night bus leave the depot", "top_k": 2}
    chunks = admin.post("/v1/search", json=q).json()
    assert [Path(h["source"]).name for h in chunks] == ["bus-log.md", "bus-log.md"]
    docs = admin.post("/v1/search", json=q | {"group_by": "document"}).json()
    assert len(docs) == 2 and len({d["doc_id"] for d in docs}) == 2
    assert Path(docs[0]["source"]).name == "bus-log.md" and docs[0]["rank"] == 1
    assert len(docs[0]["passages"]) == 3 and docs[0]["matched"] >= 8
    assert [p["chunk_id"] for p in docs[0]["passages"][:2]] == [h["chunk_id"] for h in chunks]
    assert docs[0]["score"] == docs[0]["passages"][0]["score"]
    r = admin.post("/v1/search", json=q | {"group_by": "page"})
    assert r.status_code == 422 and "group_by" in r.json()["error"]["message"]


def test_keys_scopes_and_errors(server) -> None:
    srv, keys, root = server
    assert httpx.get(srv.url + "/healthz").json() == {"status": "ok"}
    r = httpx.post(srv.url + "/v1/search", json={"query": "x"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    assert srv.client("gw_nope_nope").post("/v1/search", json={"query": "x"}).status_code == 401
    reader = srv.client(keys["query"])
    r = reader.post("/v1/documents", files=[("files", ("a.md", b"# A\n\ntext here\n", "text/markdown"))])
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert reader.get("/v1/audit").status_code == 403
    assert srv.client(keys["ingest"]).post("/v1/search", json={"query": "x"}).status_code == 403
    r = reader.post("/v1/search", json={"query": "x", "filter": "nosuchfield = "})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_filter"
    # a field no document has matches nothing for a restricted key (no error could list other tenants' fields)
    assert reader.post("/v1/search", json={"query": "x", "filter": "nosuchfield = 1"}).json() == []
    r = reader.post("/v1/search", json={"query": "x", "top_k": 101})
    assert r.status_code == 422 and "top_k" in r.json()["error"]["message"]
    r = reader.post("/v1/search", json={"nope": 1})
    assert r.status_code == 422 and set(r.json()) == {"error"}  # no stack trace, a stable code
    # revocation takes effect on the next request
    temp = create_key(srv.kb, "temp", "query")
    assert srv.client(temp).post("/v1/search", json={"query": "canteen"}).status_code == 200
    import subprocess

    from tests.serve.server import GW

    key_id = temp.split("_")[1]
    subprocess.run([GW, "--kb", str(srv.kb), "keys", "revoke", key_id], check=True, capture_output=True)
    assert srv.client(temp).post("/v1/search", json={"query": "canteen"}).status_code == 401
    stored = (srv.kb / "keys.sqlite").read_bytes()
    assert temp.encode() not in stored and keys["admin"].encode() not in stored  # only salted hashes at rest


def test_openai_client_gets_grounded_answers(server) -> None:
    srv, keys, _ = server
    upload(srv.client(keys["admin"]), {"lunch.md": CANTEEN})
    client = openai.OpenAI(base_url=srv.url + "/v1", api_key=keys["query"])
    resp = client.chat.completions.create(
        model="groundwork", messages=[{"role": "user", "content": "When is lunch served?"}]
    )
    msg = resp.choices[0].message
    assert "noon" in msg.content and "[1]" in msg.content
    cites = msg.model_extra["citations"]
    assert cites and Path(cites[0]["source"]).name in {"lunch.md", "canteen.md"} and "noon" in cites[0]["text"]

    stream = client.chat.completions.create(
        model="groundwork", stream=True, messages=[{"role": "user", "content": "When is lunch served?"}]
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "noon" in text and "[1]" in text
    final = chunks[-1]
    assert final.choices[0].finish_reason == "stop" and final.model_extra["citations"][0]["n"] == 1
    # a follow-up is rewritten from the history before retrieval
    resp = client.chat.completions.create(
        model="groundwork",
        messages=[
            {"role": "user", "content": "When is lunch served?"},
            {"role": "assistant", "content": msg.content},
            {"role": "user", "content": "Which days?"},
        ],
    )
    assert "weekday" in resp.choices[0].message.content


def test_feedback_lands_in_the_audit(server) -> None:
    srv, keys, _ = server
    admin, reader = srv.client(keys["admin"]), srv.client(keys["query"])
    upload(admin, {"canteen.md": CANTEEN})
    ans = reader.post("/v1/answer", json={"question": "When does the canteen serve lunch?"}).json()
    r = reader.post("/v1/feedback", json={"answer_id": ans["answer_id"], "rating": "down", "comment": "too short"})
    assert r.status_code == 200
    assert reader.post("/v1/feedback", json={"answer_id": "nope", "rating": "up"}).status_code == 404
    record = admin.get(f"/v1/audit/{ans['answer_id']}").json()
    assert record["caller"] == "reader" and record["question"] == "When does the canteen serve lunch?"
    assert record["feedback"][0]["rating"] == "down" and record["feedback"][0]["comment"] == "too short"
    assert record["retrieved"] and record["index_version"] >= 1 and "generate" in record["latency_ms"]
    assert any(r["answer_id"] == ans["answer_id"] for r in admin.get("/v1/audit").json())
    assert keys["query"] not in json.dumps(record)


def test_metrics_and_records_upload(server) -> None:
    srv, keys, _ = server
    admin = srv.client(keys["admin"])
    r = admin.post(
        "/v1/documents",
        json={
            "name": "tickets",
            "records": [
                {"id": "T-1", "body": "The VPN drops every hour for users in Leeds.", "team": "it"},
                {"id": "T-2", "body": "Printer on floor two is out of toner.", "team": "facilities"},
            ],
            "text_field": "body",
            "id_field": "id",
            "metadata_fields": ["team"],
        },
    )
    assert r.status_code == 202
    job = wait_job(admin, r.json()["job_id"])
    assert job["status"] == "done" and job["results"][0]["documents"] == 2
    hits = admin.post("/v1/search", json={"query": "vpn drops", "filter": "team = 'it'"}).json()
    assert hits and all(h["metadata"]["team"] == "it" for h in hits)
    text = httpx.get(srv.url + "/metrics").text
    assert 'groundwork_http_requests_total{endpoint="/v1/search",method="POST",status="200"}' in text
    assert "groundwork_pipeline_stage_seconds_bucket" in text and 'stage="retrieve"' in text
    assert "groundwork_ingest_files_total" in text and "groundwork_answers_total" in text
    assert "groundwork_embedding_cache_hits_total" in text
