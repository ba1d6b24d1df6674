"""A job accepted (202) before a kill -9 of the server completes after a restart."""

from __future__ import annotations

import pytest

from tests.serve.server import Server, create_key, wait_job

pytestmark = pytest.mark.slow


def test_job_accepted_before_kill9_completes_after_restart(tmp_path) -> None:
    kb = tmp_path / "kb"
    key = create_key(kb, "ops", "query,ingest")
    srv = Server(kb).start()
    files = [
        (
            "files",
            (
                f"note{i:02d}.md",
                f"# Note {i}\n\nMeeting room {i} seats {i + 2} people and has a screen.\n".encode(),
                "text/markdown",
            ),
        )
        for i in range(40)
    ]
    with srv.client(key) as c:
        r = c.post("/v1/documents", files=files)
        assert r.status_code == 202
        job_id = r.json()["job_id"]
        srv.kill9()  # at once: the worker has at most begun
    import json
    import sqlite3

    with sqlite3.connect(kb / "jobs.sqlite") as db:  # what the dead server left: the job, unfinished
        status, body = db.execute("SELECT status, body FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
    assert status in ("queued", "running") and json.loads(body)["done"] < 40
    restarted = Server(kb, env={}).start()
    try:
        with restarted.client(key) as c:
            job = wait_job(c, job_id, timeout=300)
            assert job["status"] == "done" and job["done"] == 40
            assert {r["file"] for r in job["results"]} == {f"note{i:02d}.md" for i in range(40)}
            assert c.get("/v1/documents", params={"limit": 500}).json()["total"] == 40
            hits = c.post(
                "/v1/search", json={"query": "how many people does meeting room 17 seat", "mode": "bm25"}
            ).json()
            assert hits[0]["source"].endswith("note17.md")
    finally:
        restarted.stop()
