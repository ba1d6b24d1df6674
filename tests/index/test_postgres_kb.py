"""The whole pipeline on PostgreSQL + pgvector (a real server): ingest and sync, hybrid search,
access control, versions, answers and their audit records; `groundwork migrate` both ways."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from groundwork.config import load_settings
from groundwork.kb import KnowledgeBase
from groundwork.types import Access
from tests.conftest import write

GW = str(Path(sys.executable).parent / "groundwork")
DOCS = {
    "pumps.md": "# Pumps\n\nThe coolant pump pressure is checked every Monday by the night shift.\n",
    "valves.md": "# Valves\n\nRelief valves are replaced every two years, or after any overpressure event.\n",
    "canteen.md": "# Canteen\n\nThe canteen serves lunch from noon until two o'clock on weekdays.\n",
}


def pg_kb(tmp_path: Path, dsn: str, schema: str, name: str = "kb") -> KnowledgeBase:
    return KnowledgeBase(
        settings=load_settings(kb=tmp_path / name, store="postgres", pg_dsn=dsn, **{"postgres.schema_name": schema})
    )


def test_ingest_sync_search_acl_versions_audit(tmp_path: Path, pg_dsn: str, pg_schema: str) -> None:
    folder = tmp_path / "docs"
    for name, text in DOCS.items():
        write(folder / name, text)
    kb = pg_kb(tmp_path, pg_dsn, pg_schema)
    r1 = kb.ingest([folder])
    assert (r1.added, r1.failed, kb.count_chunks()) == (3, [], 3)
    hits = kb.search("how often are relief valves replaced", mode="hybrid", top_k=3)
    assert Path(hits[0].chunk.source).name == "valves.md" and {"bm25", "dense"} <= set(hits[0].scores)
    assert Path(kb.search("coolant pressure", mode="bm25")[0].chunk.source).name == "pumps.md"

    write(folder / "pumps.md", DOCS["pumps.md"].replace("Monday", "Friday"))
    (folder / "canteen.md").unlink()
    r2 = kb.ingest([folder])
    assert (r2.updated, r2.deleted, r2.unchanged) == (1, 1, 1)
    assert "Friday" in kb.search("coolant pump check day", top_k=1)[0].chunk.text
    assert [v.version for v in kb.versions()] == [1, 2] and kb.versions()[-1].documents == 2

    # Access control from ingest, enforced inside the store's queries.
    write(tmp_path / "hr" / "salaries.md", "# Salaries\n\nSalary bands are reviewed every April by HR.\n")
    kb.ingest([tmp_path / "hr"], tenant="acme", allowed_groups=["hr"])
    assert not any("Salary" in h.chunk.text for h in kb.search("salary bands review", access=Access()))
    assert kb.search("salary bands review", access=Access("acme", ("hr",)))[0].chunk.text.count("April") == 1

    # A second process on the same database sees the same index (what a second replica does).
    other = pg_kb(tmp_path, pg_dsn, pg_schema, name="other-folder")
    assert {d.doc_id for d in other.documents()} == {d.doc_id for d in kb.documents()}
    ans = other.ask("When are relief valves replaced?")
    assert not ans.abstained and "two years" in ans.answer
    record = kb.audit.get(ans.answer_id)
    assert record["index_version"] == 3 and record["cited"][0]["doc_id"].endswith("valves.md")
    kb.audit.add_feedback(ans.answer_id, "up", "right", "test")
    assert other.audit.get(ans.answer_id)["feedback"][0]["rating"] == "up"


def test_migrate_round_trip_gives_identical_results(tmp_path: Path, pg_dsn: str, pg_schema: str) -> None:
    folder = tmp_path / "docs"
    for name, text in DOCS.items():
        write(folder / name, text * 3)
    lance = KnowledgeBase(settings=load_settings(kb=tmp_path / "lance"))
    lance.ingest([folder])
    lance.ingest([folder / "pumps.md"], tenant="acme", allowed_groups=["ops"])  # an ACL change, version 2
    dsn = pg_dsn
    env_args = [GW, "--kb", str(tmp_path / "state")]
    env = {"HF_HUB_OFFLINE": "1", "GROUNDWORK_POSTGRES__SCHEMA_NAME": pg_schema, "PATH": "/usr/bin:/bin"}
    run = lambda *a: subprocess.run([*env_args, *a], capture_output=True, text=True, env=env)  # noqa: E731
    out = run("migrate", "--from", f"lance://{tmp_path / 'lance'}", "--to", dsn, "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["verified"] and report["chunks"] == lance.count_chunks() and report["versions"] == 2

    pg = pg_kb(tmp_path, dsn, pg_schema)
    queries = ["relief valve replacement interval", "when is lunch served", "coolant pump pressure check"]
    for access in (Access.all(), Access(), Access("acme", ("ops",))):
        for q in queries:  # dense search is exact on both stores: same chunks, same scores
            a = lance.search(q, mode="dense", top_k=5, access=access)
            b = pg.search(q, mode="dense", top_k=5, access=access)
            assert [h.chunk.chunk_id for h in a] == [h.chunk.chunk_id for h in b]
            assert [round(h.score, 5) for h in a] == [round(h.score, 5) for h in b]
    assert [(d.doc_id, d.tenant, d.allowed_groups, d.chunks) for d in lance.documents()] == [
        (d.doc_id, d.tenant, d.allowed_groups, d.chunks) for d in pg.documents()
    ]
    assert [v.version for v in pg.versions()] == [1, 2]

    # ... and back: PostgreSQL -> a new LanceDB folder answers every mode exactly as the original.
    out = run("migrate", "--from", dsn, "--to", f"lance://{tmp_path / 'back'}", "--json")
    assert out.returncode == 0, out.stderr
    back = KnowledgeBase(settings=load_settings(kb=tmp_path / "back"))
    for mode in ("bm25", "dense", "hybrid"):
        for q in queries:
            a = [(h.chunk.chunk_id, round(h.score, 5)) for h in lance.search(q, mode=mode, top_k=5)]
            assert a == [(h.chunk.chunk_id, round(h.score, 5)) for h in back.search(q, mode=mode, top_k=5)], (mode, q)
    refused = run("migrate", "--from", f"lance://{tmp_path / 'lance'}", "--to", dsn)
    assert refused.returncode == 2 and "already holds" in refused.stderr


def test_bm25_statistics_stay_exact(tmp_path: Path, pg_dsn: str, pg_schema: str) -> None:
    """lexeme_df and corpus_stats, kept incrementally by every write, equal a recount from scratch."""
    import psycopg

    folder = tmp_path / "docs"
    for name, text in DOCS.items():
        write(folder / name, text)
    kb = pg_kb(tmp_path, pg_dsn, pg_schema)
    kb.ingest([folder])
    write(folder / "pumps.md", DOCS["pumps.md"] + "\nAlso the impeller is inspected.\n")
    (folder / "canteen.md").unlink()
    kb.ingest([folder])
    with psycopg.connect(pg_dsn) as conn:
        conn.execute(f"SET search_path TO {pg_schema}, public")
        kept = dict(conn.execute("SELECT lexeme, df FROM lexeme_df WHERE df <> 0").fetchall())
        recount = dict(
            conn.execute("SELECT u.lexeme, count(*) FROM chunks c, unnest(c.tsv) u GROUP BY u.lexeme").fetchall()
        )
        assert kept == recount and "impel" in kept and "canteen" not in kept
        assert (
            conn.execute("SELECT n, total_len FROM corpus_stats").fetchone()
            == conn.execute("SELECT count(*), sum(tsv_len) FROM chunks").fetchone()
        )
