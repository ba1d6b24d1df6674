"""The server answers from the newest index: an ingest by another process (the CLI, or another
replica on PostgreSQL) is visible to the next request, in answers, versions and the document list."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.serve.server import GW, Server, create_key

pytestmark = pytest.mark.slow

OLD = "# Travel policy\n\nThe meal allowance is £40 per day when travelling for work.\n"
NEW = "# Travel policy\n\nThe meal allowance is £45 per day when travelling for work.\n"


def cli(env: dict[str, str], *args: str) -> None:
    out = subprocess.run([GW, *args], capture_output=True, text=True, env={**os.environ, **env}, timeout=300)
    assert out.returncode == 0, out.stderr


def check_fresh(srv: Server, key: str, kb: Path, env: dict[str, str], docs: Path) -> None:
    c = srv.client(key)
    first = c.post("/v1/answer", json={"question": "What is the meal allowance?"}).json()
    assert "£40" in first["answer"]
    (docs / "travel.md").write_text(NEW)
    (docs / "parking.md").rename(docs / "car-park.md")  # a rename: one document out, one in
    cli(env, "--kb", str(kb), "ingest", str(docs))  # another process writes a new version
    second = c.post("/v1/answer", json={"question": "What is the meal allowance?"}).json()
    assert "£45" in second["answer"] and "£40" not in second["answer"]
    assert second["index_version"] == first["index_version"] + 1
    versions = c.get("/v1/versions").json()
    assert versions[-1]["version"] == second["index_version"]
    names = {Path(d["source"]).name for d in c.get("/v1/documents").json()["items"]}
    assert names == {"travel.md", "car-park.md"}


def make_docs(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "travel.md").write_text(OLD)
    (docs / "parking.md").write_text("# Parking\n\nVisitors park in the north car park.\n")
    return docs


def test_the_server_sees_an_ingest_by_another_process(tmp_path: Path) -> None:
    kb, docs = tmp_path / "kb", make_docs(tmp_path)
    cli({}, "--kb", str(kb), "ingest", str(docs))
    key = create_key(kb, "reader", "query")
    srv = Server(kb).start()
    try:
        check_fresh(srv, key, kb, {}, docs)
    finally:
        srv.stop()


def test_a_replica_sees_an_ingest_by_another_on_postgres(tmp_path: Path, pg_dsn: str, pg_schema: str) -> None:
    env = {"GROUNDWORK_STORE": "postgres", "GROUNDWORK_PG_DSN": pg_dsn, "GROUNDWORK_POSTGRES__SCHEMA_NAME": pg_schema}
    kb, docs = tmp_path / "kb", make_docs(tmp_path)
    cli(env, "--kb", str(kb), "ingest", str(docs))
    out = subprocess.run(
        [GW, "--kb", str(kb), "keys", "create", "--name", "r", "--scopes", "query", "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=True,
    )
    import json

    srv = Server(kb, env=env).start()
    try:
        check_fresh(srv, json.loads(out.stdout)["key"], kb, env, docs)
    finally:
        srv.stop()
