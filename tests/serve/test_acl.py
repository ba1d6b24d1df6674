"""ACL leak test: two tenants and two groups with overlapping content. No endpoint, cache or audit
view may ever return a chunk or document the caller may not see."""

from __future__ import annotations

import json

import openai
import pytest

from tests.serve.server import Server, create_key, wait_job

pytestmark = pytest.mark.slow

SECRET = {  # every document answers the same question, with a marker naming who may see it
    "acme-hr": ("acme", "hr", "The Acme bonus pool this year is 4 percent, says the HR handbook. Marker ACMEHR."),
    "acme-eng": ("acme", "eng", "The Acme bonus pool this year is 6 percent for engineers. Marker ACMEENG."),
    "acme-all": ("acme", None, "The Acme bonus pool is announced in March to all staff. Marker ACMEALL."),
    "globex-hr": (
        "globex",
        "hr",
        "The Globex bonus pool this year is 9 percent, says the HR handbook. Marker GLOBEXHR.",
    ),
}
QUESTION = "How big is the bonus pool this year?"


@pytest.fixture(scope="module")
def acl_server(tmp_path_factory: pytest.TempPathFactory):
    kb = tmp_path_factory.mktemp("acl") / "kb"
    keys = {
        "acme-loader": create_key(kb, "acme-loader", "ingest,query", tenant="acme", groups="hr,eng"),
        "globex-loader": create_key(kb, "globex-loader", "ingest,query", tenant="globex", groups="hr"),
        "acme-hr": create_key(kb, "acme-hr", "query,admin", tenant="acme", groups="hr"),
        "acme-eng": create_key(kb, "acme-eng", "query", tenant="acme", groups="eng"),
        "globex-hr": create_key(kb, "globex-hr", "query,admin", tenant="globex", groups="hr"),
        "acme-none": create_key(kb, "acme-none", "query", tenant="acme"),
    }
    srv = Server(kb).start()
    for name, (tenant, group, text) in SECRET.items():
        c = srv.client(keys[f"{tenant}-loader"])
        r = c.post(
            "/v1/documents",
            files=[("files", (f"{name}.md", f"# Bonus\n\n{text}\n".encode(), "text/markdown"))],
            data={"allowed_groups": group} if group else None,
        )
        assert wait_job(c, r.json()["job_id"])["status"] == "done"
    yield srv, keys
    srv.stop()


VISIBLE = {
    "acme-hr": {"ACMEHR", "ACMEALL"},
    "acme-eng": {"ACMEENG", "ACMEALL"},
    "acme-none": {"ACMEALL"},
    "globex-hr": {"GLOBEXHR"},
}
ALL_MARKERS = {"ACMEHR", "ACMEENG", "ACMEALL", "GLOBEXHR"}


def markers(payload: object) -> set[str]:
    text = json.dumps(payload)
    return {m for m in ALL_MARKERS if m in text} | {m for m in ALL_MARKERS if m.lower() in text.lower()}


def doc_names(payload: object) -> set[str]:
    text = json.dumps(payload)
    return {n for n in SECRET if f"{n}.md" in text}


@pytest.mark.parametrize("who", sorted(VISIBLE))
def test_no_endpoint_leaks_across_tenants_or_groups(acl_server, who: str) -> None:
    srv, keys = acl_server
    c = srv.client(keys[who])
    allowed = VISIBLE[who]
    allowed_docs = {n for n, (t, g, text) in SECRET.items() if any(m in text for m in allowed)}
    seen: dict[str, object] = {}
    for mode in ("bm25", "dense", "hybrid"):
        seen[f"search-{mode}"] = c.post("/v1/search", json={"query": QUESTION, "mode": mode, "top_k": 50}).json()
        grouped = {"query": QUESTION, "mode": mode, "top_k": 50, "group_by": "document"}
        seen[f"search-documents-{mode}"] = c.post("/v1/search", json=grouped).json()
    for _ in range(2):  # a second identical request may not be served from anything shared with other keys
        ans = c.post("/v1/answer", json={"question": QUESTION, "top_k": 20}).json()
        seen.setdefault("answers", []).append(ans)
    client = openai.OpenAI(base_url=srv.url + "/v1", api_key=keys[who])
    chat = client.chat.completions.create(model="g", messages=[{"role": "user", "content": QUESTION}])
    seen["chat"] = chat.model_dump()
    stream = client.chat.completions.create(model="g", stream=True, messages=[{"role": "user", "content": QUESTION}])
    seen["chat-stream"] = [ch.model_dump() for ch in stream]
    docs = c.get("/v1/documents", params={"limit": 500}).json()
    seen["documents"] = docs
    for d in docs["items"]:
        seen[f"doc-{d['doc_id']}"] = c.get(f"/v1/documents/{d['doc_id']}").json()
    seen["versions"] = c.get("/v1/versions").json()
    audit = c.get("/v1/audit", params={"limit": 500})
    if audit.status_code == 200:
        seen["audit"] = audit.json()
        for rec in audit.json():
            seen[f"audit-{rec['answer_id']}"] = c.get(f"/v1/audit/{rec['answer_id']}").json()
    for name, payload in seen.items():
        assert markers(payload) <= allowed, f"{who} saw {markers(payload) - allowed} via {name}"
        assert doc_names(payload) <= allowed_docs, f"{who} saw {doc_names(payload) - allowed_docs} via {name}"
    # ... and what it may see, it does see (the filter is a pre-filter, not an empty result)
    assert (
        markers(seen["search-hybrid"]) == allowed
        and markers(seen["search-documents-hybrid"]) == allowed
        and {d["source"].rsplit("/", 1)[-1][:-3] for d in docs["items"]} == allowed_docs
    )


def test_documents_of_other_tenants_cannot_be_fetched_or_deleted(acl_server) -> None:
    srv, keys = acl_server
    globex_doc = next(d["doc_id"] for d in srv.client(keys["globex-hr"]).get("/v1/documents").json()["items"])
    acme = srv.client(keys["acme-loader"])
    assert acme.get(f"/v1/documents/{globex_doc}").status_code == 404
    assert acme.delete(f"/v1/documents/{globex_doc}").status_code == 404
    assert srv.client(keys["globex-hr"]).get(f"/v1/documents/{globex_doc}").status_code == 200
    # an admin of one tenant does not see the other tenant's audit records
    g_ans = srv.client(keys["globex-hr"]).post("/v1/answer", json={"question": QUESTION}).json()
    assert srv.client(keys["acme-hr"]).get(f"/v1/audit/{g_ans['answer_id']}").status_code == 404
    assert (
        srv.client(keys["acme-hr"])
        .post("/v1/feedback", json={"answer_id": g_ans["answer_id"], "rating": "up"})
        .status_code
        == 404
    )
