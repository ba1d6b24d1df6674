"""Two app instances over one real PostgreSQL: they share the answer cache and both invalidate it on an
ingest; a tenant's daily token quota is counted across both and answered with 429 (answers, chat,
streamed or not); ``/v1/usage`` and ``groundwork usage`` sum tokens by key, tenant and day."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from groundwork.cli import app as cli_app
from groundwork.config import load_settings
from groundwork.serve.app import create_app
from groundwork.state.keys import PgKeyStore

pytestmark = pytest.mark.slow

VALVES = "# Valves\n\nRelief valves are replaced every {} years, or after any overpressure event.\n"
Q = "How often are relief valves replaced?"


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory, pg_dsn: str, embedder):
    import uuid

    import psycopg

    root = tmp_path_factory.mktemp("replicas")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    overrides = {"store": "postgres", "pg_dsn": pg_dsn, "postgres.schema_name": schema, "quota.tenants": {"acme": 1}}
    mp = pytest.MonkeyPatch()
    mp.setattr("groundwork.wiring.build_embedder", lambda settings: embedder)  # one loaded model for both apps
    with TestClient(create_app(load_settings(kb=root / "a", **overrides))) as a:
        svc = a.app.state.service
        store = PgKeyStore(svc.kb.components.pg_pool())
        keys = {
            "reader": store.create("reader", ["query"], [], "globex")[1],
            "acme": store.create("acme-user", ["query"], [], "acme")[1],
            "acme_admin": store.create("acme-admin", ["query", "admin"], [], "acme")[1],
        }
        for tenant, years in (("globex", "two"), ("acme", "five")):
            doc = root / "docs" / tenant / "valves.md"
            doc.parent.mkdir(parents=True)
            doc.write_text(VALVES.format(years))
            svc.kb.ingest([doc], tenant=tenant)
        with TestClient(create_app(load_settings(kb=root / "b", **overrides))) as b:
            yield a, b, keys, root, overrides
    mp.undo()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def post(client: TestClient, key: str, path: str, body: dict):
    return client.post(path, json=body, headers={"Authorization": f"Bearer {key}"})


def ask(client: TestClient, key: str, question: str = Q) -> dict:
    r = post(client, key, "/v1/answer", {"question": question})
    assert r.status_code == 200, r.text
    return r.json()


def test_replicas_share_the_answer_cache_and_both_invalidate_on_an_ingest(replicas) -> None:
    a, b, keys, root, _ = replicas
    a1, b1 = ask(a, keys["reader"]), ask(b, keys["reader"])
    assert "two years" in a1["answer"] and a1["cached_from"] is None
    assert b1["cached_from"] == a1["answer_id"] and b1["answer"] == a1["answer"]  # B's memory was empty: the table
    doc = root / "docs" / "globex" / "valves.md"
    doc.write_text(VALVES.format("three"))
    a.app.state.service.kb.ingest([doc], tenant="globex")
    b2, a2 = ask(b, keys["reader"]), ask(a, keys["reader"])
    assert "three years" in b2["answer"] and b2["cached_from"] is None
    assert b2["index_version"] == b1["index_version"] + 1
    assert "three years" in a2["answer"] and a2["cached_from"] == b2["answer_id"]


def test_a_daily_token_quota_holds_across_replicas_for_answers_and_chat(replicas) -> None:
    a, b, keys, _, _ = replicas
    first = ask(a, keys["acme"], "When are relief valves replaced?")  # used 0 of 1: allowed, uses more
    assert "five years" in first["answer"] and first["usage"]["prompt_tokens"] > 0
    chat = {"model": "m", "messages": [{"role": "user", "content": "Which valves are replaced?"}]}
    refused = [
        post(b, keys["acme"], "/v1/answer", {"question": "Which valves are replaced?"}),
        post(b, keys["acme"], "/v1/chat/completions", chat),
        post(a, keys["acme"], "/v1/chat/completions", chat | {"stream": True}),
    ]
    tomorrow = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
    for r in refused:
        assert r.status_code == 429 and r.json()["error"]["code"] == "quota_exceeded", r.text
        message = r.json()["error"]["message"]
        assert "tenant 'acme'" in message and "of the 1 tokens" in message and f"{tomorrow}T00:00:00Z" in message
        assert 0 < int(r.headers["Retry-After"]) <= 86400
    assert post(b, keys["reader"], "/v1/answer", {"question": "Which valves are replaced?"}).status_code == 200


def test_usage_is_summed_by_key_tenant_and_day(replicas) -> None:
    a, b, keys, _, overrides = replicas
    ask(b, keys["reader"], "What happens after an overpressure event?")

    def get(key: str, query: str):
        return b.get(f"/v1/usage?{query}", headers={"Authorization": f"Bearer {key}"})

    mine = get(keys["reader"], "by=key,tenant,day").json()
    assert {r["key_name"] for r in mine} == {"reader"} and {r["tenant"] for r in mine} == {"globex"}
    assert mine[0]["answers"] >= 4 and mine[0]["cached"] >= 1 and mine[0]["total_tokens"] > 0
    tenant = get(keys["acme_admin"], "by=tenant").json()
    assert [r["tenant"] for r in tenant] == ["acme"] and tenant[0]["answers"] == 1  # refused requests use nothing
    assert get(keys["reader"], "by=colour").status_code == 422
    env = {"GROUNDWORK_STORE": "postgres", "GROUNDWORK_PG_DSN": overrides["pg_dsn"]}
    env["GROUNDWORK_POSTGRES__SCHEMA_NAME"] = overrides["postgres.schema_name"]
    out = CliRunner().invoke(cli_app, ["--kb", str(Path("unused")), "usage", "--by", "tenant", "--json"], env=env)
    assert out.exit_code == 0, out.output
    totals = {r["tenant"]: r for r in json.loads(out.stdout)}
    assert set(totals) == {"acme", "globex"} and totals["acme"]["total_tokens"] == tenant[0]["total_tokens"]
