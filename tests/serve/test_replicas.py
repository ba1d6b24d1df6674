"""Two `groundwork serve` replicas on two loopback ports sharing one PostgreSQL: documents, keys,
jobs, audit records and rate limits are shared; a job whose worker is killed is finished by the other."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import psycopg
import pytest

from tests.serve.server import GW, Server, create_key, wait_job

pytestmark = pytest.mark.slow

VALVES = "# Valves\n\nRelief valves are replaced every two years, or after any overpressure event.\n"
BURST = 30


@pytest.fixture
def replicas(tmp_path: Path, pg_dsn: str, pg_schema: str):
    env = {
        "GROUNDWORK_STORE": "postgres",
        "GROUNDWORK_PG_DSN": pg_dsn,
        "GROUNDWORK_POSTGRES__SCHEMA_NAME": pg_schema,
        "GROUNDWORK_SERVE__RATE_BURST": str(BURST),
        "GROUNDWORK_SERVE__RATE_PER_MINUTE": "30",
        "GROUNDWORK_SERVE__JOB_LEASE_SECONDS": "3",
        "HF_HUB_OFFLINE": "1",
    }
    full = {**os.environ, **env}
    out = subprocess.run([GW, "db", "migrate"], capture_output=True, text=True, env=full)
    assert out.returncode == 0, out.stderr
    os.environ.update(env)  # create_key runs the CLI with this environment
    try:
        keys = {
            "admin": create_key(tmp_path / "a", "ops", "query,ingest,admin"),
            "reader": create_key(tmp_path / "b", "reader", "query"),
            "hammer": create_key(tmp_path / "a", "hammer", "query"),
            "loader": create_key(tmp_path / "b", "loader", "query,ingest"),
        }
    finally:
        for k in env:
            os.environ.pop(k, None)
    a, b = Server(tmp_path / "a", env), Server(tmp_path / "b", env)
    a.start(), b.start()
    yield a, b, keys
    a.stop(), b.stop()


def test_two_replicas_behave_as_one_service(replicas, pg_dsn: str, pg_schema: str) -> None:
    a, b, keys = replicas
    assert a.port != b.port
    admin_a, admin_b, reader_b = a.client(keys["admin"]), b.client(keys["admin"]), b.client(keys["reader"])

    # Ingest through A (the job is visible from B), answer through B, the audit record through A.
    r = admin_a.post("/v1/documents", files=[("files", ("valves.md", VALVES.encode(), "text/markdown"))])
    assert r.status_code == 202
    job = wait_job(admin_b, r.json()["job_id"])
    assert job["status"] == "done" and job["results"][0]["status"] == "added"
    hits = reader_b.post("/v1/search", json={"query": "how often are relief valves replaced", "top_k": 3}).json()
    assert hits[0]["doc_id"] == "upload://~/valves.md"
    ans = reader_b.post("/v1/answer", json={"question": "When are relief valves replaced?"}).json()
    assert not ans["abstained"] and "two years" in ans["answer"]
    assert admin_a.get(f"/v1/audit/{ans['answer_id']}").json()["question"] == "When are relief valves replaced?"

    # A key revoked through one replica's database is refused by both at once.
    revoked = create_key_env(a, "temp")
    assert a.client(revoked).get("/v1/me").status_code == 200
    subprocess.run(
        [GW, "--kb", str(a.kb), "keys", "revoke", revoked.split("_")[1]], env=a.env, check=True, capture_output=True
    )
    assert a.client(revoked).get("/v1/me").status_code == 401 and b.client(revoked).get("/v1/me").status_code == 401

    # One token bucket per key across replicas: alternating A and B, about BURST requests pass, not 2 x BURST.
    ha, hb = a.client(keys["hammer"]), b.client(keys["hammer"])
    t0 = time.monotonic()
    codes = [(ha if i % 2 == 0 else hb).get("/v1/me").status_code for i in range(2 * BURST)]
    refill = int((time.monotonic() - t0) * 30 / 60) + 1  # tokens that may come back while the loop runs
    assert BURST <= codes.count(200) <= BURST + refill, codes
    assert codes[-1] == 429

    # A job whose worker is killed mid-run is taken over by the other replica (after the lease).
    files = [
        (
            "files",
            (
                f"note{i:02d}.md",
                f"# Note {i}\n\nMaintenance note number {i} about pump {i}.\n".encode(),
                "text/markdown",
            ),
        )
        for i in range(30)
    ]
    job_id = a.client(keys["loader"]).post("/v1/documents", files=files).json()["job_id"]
    worker = None
    with psycopg.connect(pg_dsn) as conn:
        deadline = time.time() + 60
        while time.time() < deadline:
            row = conn.execute(
                f"SELECT status, worker, (body->>'done')::int FROM {pg_schema}.jobs WHERE job_id = %s", (job_id,)
            ).fetchone()
            conn.commit()
            if row[0] == "running" and row[2] >= 2:
                worker = row[1]
                break
            time.sleep(0.05)
    assert worker is not None, "the job never started"
    victim, survivor = (a, b) if worker.split(":")[1] == str(a.proc.pid) else (b, a)
    assert worker.split(":")[1] == str(victim.proc.pid)
    victim.kill9()
    job = wait_job(survivor.client(keys["loader"]), job_id, timeout=240)
    assert job["status"] == "done" and job["done"] == job["total"] == 30
    assert {r["status"] for r in job["results"]} <= {"added", "unchanged"}
    docs = survivor.client(keys["reader"]).get("/v1/documents", params={"limit": 100}).json()
    assert docs["total"] == 31
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute(f"SELECT worker FROM {pg_schema}.jobs WHERE job_id = %s", (job_id,)).fetchone()[0] != worker


def create_key_env(server: Server, name: str) -> str:
    import json

    out = subprocess.run(
        [GW, "--kb", str(server.kb), "keys", "create", "--name", name, "--scopes", "query", "--json"],
        env=server.env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)["key"]
