"""One writer at a time, `groundwork check` and `--repair`, and the sync's re-verify: written as the
attacks (two concurrent ingests; rows planted in LanceDB and statistics skewed in PostgreSQL directly)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import lancedb
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from typer.testing import CliRunner

from groundwork.cli import app
from groundwork.config import load_settings
from groundwork.errors import StoreError
from groundwork.index.check import scan_rows
from groundwork.index.lance import LanceStore
from groundwork.index.store import ROW_COLUMNS
from groundwork.kb import KnowledgeBase
from tests.conftest import write

GW = str(Path(sys.executable).parent / "groundwork")
TOPICS = ["gardening", "astronomy", "cooking", "sailing", "chess", "pottery"]


def gw(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def make_corpus(root: Path, n: int = 6) -> Path:
    """``n`` two-section notes; the odd ones in ``root/part`` (a folder inside the other)."""
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        sections = [f"## Part {j}\n\n" + " ".join(f"{topic} fact {i}-{j}-{k}." for k in range(12)) for j in range(2)]
        write(root / ("part" if i % 2 else "") / f"note{i}.md", f"# {topic.title()} {i}\n\n" + "\n\n".join(sections))
    return root


def kb_at(path: Path, **overrides) -> KnowledgeBase:
    return KnowledgeBase(settings=load_settings(kb=path, **overrides))


def chunks_table(kb: Path):
    return lancedb.connect(str(kb / "lancedb")).open_table("chunks")


def stored(kb: Path) -> list[tuple[str, str]]:
    """(chunk id, text) of every stored row, duplicates included, sorted."""
    t = chunks_table(kb).to_arrow()
    return sorted(zip(t.column("chunk_id").to_pylist(), t.column("text").to_pylist()))


def plant_copy(kb: Path, source_chunk: str, **changes) -> None:
    """Append a copy of a stored row (with ``changes``), as an interleaved writer did."""
    table = chunks_table(kb)
    data = table.to_arrow()
    row = data.filter(pc.equal(data.column("chunk_id"), source_chunk)).slice(0, 1)
    assert row.num_rows == 1
    for name, value in changes.items():
        i = row.schema.get_field_index(name)
        row = row.set_column(i, row.schema.field(i), pa.array([value], row.schema.field(i).type))
    table.add(row)


def test_the_plan_keeps_the_newest_version_and_one_row_per_chunk_id() -> None:
    rows = [  # ref, chunk_id, doc_id, doc_hash, pipeline_hash, ingested_at
        (1, "a::0", "a", "h", "p", "2025-01-01T00:00:00+00:00"),  # a: consistent
        (2, "b::0", "b", "old", "p", "2025-01-01T00:00:00+00:00"),  # b: an older version...
        (3, "b::1", "b", "old", "p", "2025-01-01T00:00:00+00:00"),
        (4, "b::0", "b", "new", "p", "2025-01-02T00:00:00+00:00"),  # ...and the newest, written twice
        (5, "b::0", "b", "new", "p", "2025-01-02T00:00:00+00:00"),
        (6, "c::0", "c", None, "p", "2025-01-01T00:00:00+00:00"),  # c: a null hash is a version too
        (7, "c::1", "c", "h", "p", "2025-01-03T00:00:00+00:00"),
    ]
    scan = scan_rows(pa.table({c: [r[i] for r in rows] for i, c in enumerate(ROW_COLUMNS)}))
    assert (scan.rows, scan.documents, scan.chunks) == (7, 3, 5)
    assert (sorted(scan.redundant), scan.affected) == ([2, 3, 4, 6], ["b", "c"])  # of equals, the last row stays
    assert {(p.kind, p.subject, p.rows) for p in scan.problems} == {
        ("duplicate_chunk_id", "b::0", 3),
        ("orphan_chunks", "b", 2),
        ("orphan_chunks", "c", 1),
    }
    clean = scan_rows(pa.table({c: [r[i] for r in rows[:1]] for i, c in enumerate(ROW_COLUMNS)}))
    assert (clean.problems, clean.redundant, clean.chunks) == ([], [], 1)


@pytest.mark.slow
def test_concurrent_ingests_wait_for_each_other_and_equal_a_clean_run(tmp_path: Path) -> None:
    docs = make_corpus(tmp_path / "docs", n=8)
    kb = tmp_path / "kb"
    env = {**os.environ, "GROUNDWORK_INGEST__BATCH_CHUNKS": "2"}  # many commits: the runs would interleave
    runs = [
        subprocess.Popen(
            [GW, "--kb", str(kb), "ingest", str(folder)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for folder in (docs, docs / "part")  # overlapping: part/ is inside docs/
    ]
    outputs = [p.communicate(timeout=600) for p in runs]
    assert [p.returncode for p in runs] == [0, 0], outputs
    waited = ["waiting for another writer (ingest) to finish..." in err for _, err in outputs]
    assert sorted(waited) == [False, True], outputs  # exactly one waited, and said so

    clean = kb_at(tmp_path / "clean")
    assert clean.ingest([docs]).added == 8
    rows = stored(kb)
    assert not [cid for cid, n in Counter(cid for cid, _ in rows).items() if n > 1]
    assert rows == stored(tmp_path / "clean")
    kbase = kb_at(kb)
    assert [d.doc_id for d in kbase.documents()] == [d.doc_id for d in clean.documents()]
    assert kbase.check().ok and kbase.versions()[-1].chunks == len(rows)


def test_planted_duplicate_is_found_and_repaired(tmp_path: Path) -> None:
    docs = make_corpus(tmp_path / "docs", n=3)
    kb = tmp_path / "kb"
    assert kb_at(kb).ingest([docs]).added == 3
    victim = next(cid for cid, text in stored(kb) if "astronomy fact 1-0-0." in text)
    plant_copy(kb, victim)
    hits = LanceStore(kb).keyword_search("astronomy fact 1-0-0", 20)
    assert Counter(h.chunk.chunk_id for h in hits).most_common(1)[0][1] == 2  # the attack: search shows it twice

    r = gw("--kb", str(kb), "check")
    assert r.exit_code == 1 and "duplicate chunk id" in r.output and victim.rsplit("/", 1)[-1] in r.output
    report = json.loads(gw("--kb", str(kb), "check", "--json").output)
    assert report["ok"] is False and report["rows_to_remove"] == 1
    assert {(p["kind"], p["subject"], p["rows"]) for p in report["problems"]} >= {("duplicate_chunk_id", victim, 2)}

    r = gw("--kb", str(kb), "check", "--repair")
    assert r.exit_code == 0 and "removed 1 rows of 1 documents" in r.output, r.output
    r = gw("--kb", str(kb), "check")
    assert r.exit_code == 0 and "consistent" in r.output
    kbase = kb_at(kb)
    assert [c for c, n in Counter(c for c, _ in stored(kb)).items() if n > 1] == []
    for query in ("astronomy fact 1-0-0", "gardening fact", "cooking part"):
        ids = [h.chunk.chunk_id for h in kbase.search(query, top_k=20)]
        assert len(ids) == len(set(ids)), query
    last = kbase.versions()[-1]
    assert (last.updated, last.changed_doc_ids, last.chunks) == (1, [victim.rsplit("::", 1)[0]], len(stored(kb)))


def test_planted_orphan_of_an_older_version_is_found_and_repaired(tmp_path: Path) -> None:
    docs = make_corpus(tmp_path / "docs", n=3)
    kb = tmp_path / "kb"
    kbase = kb_at(kb)
    kbase.ingest([docs])
    clean_rows = stored(kb)
    doc = next(d.doc_id for d in kbase.documents() if d.doc_id.endswith("note2.md"))
    # A row of the document's previous version, left beside the new one (a chunk the new version lacks).
    plant_copy(
        kb,
        f"{doc}::0",
        chunk_id=f"{doc}::7",
        position=7,
        doc_hash="0" * 64,
        text="Stale paragraph: zebras graze on the roof garden.",
        search_text="Stale paragraph: zebras graze on the roof garden.",
        ingested_at="2020-01-01T00:00:00+00:00",
    )
    assert any("zebras" in h.chunk.text for h in kb_at(kb).search("zebras roof", top_k=5))  # the attack

    found = kb_at(kb).check()
    kinds = {(p.kind, p.subject) for p in found.problems}
    assert ("orphan_chunks", doc) in kinds and found.affected == [doc] and len(found.redundant) == 1
    assert ("count_mismatch", "version 1") in kinds  # the table grew without a version

    r = gw("--kb", str(kb), "check", "--repair", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["after"]["ok"] is True
    assert stored(kb) == clean_rows
    assert not any("zebras" in h.chunk.text for h in kb_at(kb).search("zebras roof", top_k=5))


def test_ingest_again_rewrites_documents_whose_chunks_are_inconsistent(tmp_path: Path) -> None:
    docs = make_corpus(tmp_path / "docs", n=4)
    kb = tmp_path / "kb"
    assert kb_at(kb).ingest([docs]).added == 4
    clean_rows = stored(kb)
    ids = kb_at(kb).documents()
    dup_doc, orphan_doc = ids[0].doc_id, ids[1].doc_id
    plant_copy(kb, f"{dup_doc}::1")  # same hashes as the real row: looks unchanged to a plain sync
    plant_copy(kb, f"{orphan_doc}::0", chunk_id=f"{orphan_doc}::9", doc_hash="old", ingested_at="2020-01-01")

    report = kb_at(kb).ingest([docs])
    assert (report.updated, report.unchanged, report.added) == (2, 2, 0)
    assert stored(kb) == clean_rows
    after = kb_at(kb)
    assert after.check().ok
    assert set(after.versions()[-1].changed_doc_ids) == {dup_doc, orphan_doc}


def test_a_lock_that_cannot_be_taken_fails_at_once(tmp_path: Path) -> None:
    (tmp_path / "kb" / "writer.lock").mkdir(parents=True)  # a folder where the lock file should be
    store = LanceStore(tmp_path / "kb")
    # An error, never a retry loop:
    with pytest.raises(StoreError, match=r"cannot take the writer lock .*kb/writer.lock"), store.writing("ingest"):
        pytest.fail("wrote without the lock")


def test_check_without_an_index_is_a_clear_error(tmp_path: Path) -> None:
    r = gw("--kb", str(tmp_path / "nothing"), "check")
    assert r.exit_code == 2 and "no knowledge base" in r.output


# -- PostgreSQL ---------------------------------------------------------------------------------------
def pg_kb(tmp_path: Path, dsn: str, schema: str, name: str = "kb", **overrides) -> KnowledgeBase:
    return kb_at(tmp_path / name, store="postgres", pg_dsn=dsn, **{"postgres.schema_name": schema, **overrides})


class Said(logging.Handler):
    """What the library logs (the writer lock's waiting message), whatever the logging setup."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []
        self.event = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
        self.event.set()


def test_pg_replicas_ingest_one_at_a_time(tmp_path: Path, pg_dsn: str, pg_schema: str) -> None:
    docs = make_corpus(tmp_path / "docs", n=6)
    first, second = pg_kb(tmp_path, pg_dsn, pg_schema, "a"), pg_kb(tmp_path, pg_dsn, pg_schema, "b")
    reports = {}
    replica_b = threading.Thread(target=lambda: reports.update(b=second.ingest([docs / "part"])))
    said = Said()
    logging.getLogger("groundwork.index").addHandler(said)
    try:
        with first.store.writing("ingest"):  # replica A is mid-run when B starts its run
            replica_b.start()
            assert said.event.wait(120), "replica B never said it waits"
            reports["a"] = first.ingest([docs])  # A's run (re-entrant in A's thread)
            assert "b" not in reports
        replica_b.join(300)
    finally:
        logging.getLogger("groundwork.index").removeHandler(said)
    assert said.messages[0].startswith("waiting for another writer (ingest) to finish...")
    # B ran after A: its three documents were already there, unchanged.
    assert (reports["a"].added, reports["b"].added, reports["b"].unchanged) == (6, 0, 3)
    assert first.check().ok and [v.version for v in first.versions()] == [1]


def test_pg_check_finds_and_repairs_skewed_bm25_statistics(
    tmp_path: Path, pg_dsn: str, pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    docs = make_corpus(tmp_path / "docs", n=4)
    # no retrieval cache: the statistics are skewed behind the store's back, without an index version
    kb = pg_kb(tmp_path, pg_dsn, pg_schema, **{"cache.enabled": False})
    kb.ingest([docs])
    before = [(h.chunk.chunk_id, round(h.score, 6)) for h in kb.search("gardening fact", mode="bm25", top_k=5)]
    assert kb.check().ok
    with psycopg.connect(pg_dsn, autocommit=True) as conn:  # what a writer that skipped its statistics leaves
        conn.execute(f"UPDATE {pg_schema}.corpus_stats SET n = n + 40, total_len = total_len + 999")
        conn.execute(f"UPDATE {pg_schema}.lexeme_df SET df = df + 7 WHERE lexeme = 'garden'")
        conn.execute(f"DELETE FROM {pg_schema}.lexeme_df WHERE lexeme = 'cook'")
    assert [(h.chunk.chunk_id, round(h.score, 6)) for h in kb.search("gardening fact", mode="bm25", top_k=5)] != before

    found = kb.check()
    assert {p.subject for p in found.problems if p.kind == "statistics"} == {
        "corpus_stats.n",
        "corpus_stats.total_len",
        "lexeme_df",
    }
    for key, value in {"STORE": "postgres", "PG_DSN": pg_dsn, "POSTGRES__SCHEMA_NAME": pg_schema}.items():
        monkeypatch.setenv(f"GROUNDWORK_{key}", value)
    r = gw("--kb", str(tmp_path / "kb"), "check")
    assert r.exit_code == 1 and "lexeme_df" in r.output
    r = gw("--kb", str(tmp_path / "kb"), "check", "--repair")
    assert r.exit_code == 0 and "consistent" in r.output, r.output
    assert kb.check().ok
    assert [(h.chunk.chunk_id, round(h.score, 6)) for h in kb.search("gardening fact", mode="bm25", top_k=5)] == before
    assert kb.versions()[-1].updated == 0  # no rows to remove: the version records a statistics-only repair
