"""Consistency checks of an index, and their repair: what ``groundwork check [--repair]`` runs.

Two writers that interleaved (before the writer lock, see ``Store.writing``), or a store written by
hand, can leave an index that search trusts but should not. What is checked:

- **duplicate chunk ids**: a chunk id stored in more than one row (search returns the chunk twice);
- **orphan chunks**: rows of an older version of a document beside its newest one, i.e. one
  document's rows with more than one (``doc_hash``, ``pipeline_hash``) pair;
- **count mismatches**: the last index version's document and chunk counts against the table (a
  write that recorded no version, or two writers that recorded each other's counts);
- **statistics**: what the store keeps beside the chunks against a recount (PostgreSQL's BM25
  ``corpus_stats`` and ``lexeme_df``; LanceDB keeps its own).

The logic here is store-independent; each store provides its rows (``Store.stored_rows``, an Arrow
table of ids, hashes and write times), deletes exact rows (``drop_rows``) and recounts its statistics
(``recount_statistics``). Chunk ids are ``doc_id::position`` (``groundwork.ingest.chunking.base``), so
a chunk id belongs to one document and duplicates are looked for within each document. The scan is
vectorised (one Arrow group-by over all rows); only the rows of inconsistent documents become Python
objects, so a consistent index costs about as much as ``list_documents`` (``bench/check.py``).

Repair, under the writer lock: of each document the newest version is kept (the pair whose rows were
written last: ``ingested_at``, then the store's row order), and within it one row per chunk id (the
last written); the store's statistics are recounted, and an index version records the repair.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from itertools import groupby
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from groundwork.index.store import Store, WaitFn

KINDS = ("duplicate_chunk_id", "orphan_chunks", "count_mismatch", "statistics")


@dataclass(frozen=True)
class Problem:
    """One inconsistency. ``kind``: one of ``KINDS``; ``subject``: the chunk id, doc id, index
    version or statistic concerned; ``detail``: what was found, in words; ``rows``: the stored rows
    concerned (for a duplicate, every row of that id; for orphans, the older version's rows)."""

    kind: str
    subject: str
    detail: str
    rows: int = 0


@dataclass
class RowScan:
    """What one pass over the stored rows found: sizes, row problems, and the repair plan
    (``redundant``: the ``ref`` of every row a repair deletes; ``affected``: their doc ids)."""

    rows: int = 0
    chunks: int = 0  # distinct chunk ids
    documents: int = 0
    problems: list[Problem] = field(default_factory=list)
    redundant: list[Any] = field(default_factory=list)
    affected: list[str] = field(default_factory=list)


@dataclass
class CheckReport(RowScan):
    """A whole check: the row scan, plus count and statistics problems. ``version``: the last index
    version compared against (None before the first)."""

    version: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "rows": self.rows,
            "chunks": self.chunks,
            "documents": self.documents,
            "version": self.version,
            "problems": [asdict(p) for p in self.problems],
            "rows_to_remove": len(self.redundant),
            "documents_to_repair": list(self.affected),
        }


@dataclass
class RepairReport:
    """``found``: the check before the repair (under the lock); ``removed``: rows deleted;
    ``recounted``: statistics rewritten; ``version``: the index version recorded (None when there was
    nothing to repair); ``after``: the check after it."""

    found: CheckReport
    removed: int
    recounted: list[str]
    version: int | None
    after: CheckReport

    def to_dict(self) -> dict[str, Any]:
        return {
            "found": self.found.to_dict(),
            "removed_rows": self.removed,
            "repaired_documents": list(self.found.affected),
            "recounted": self.recounted,
            "version": self.version,
            "after": self.after.to_dict(),
        }


Row = dict[str, Any]  # one row of Store.stored_rows: the keys of ROW_COLUMNS


def _written(row: Row) -> tuple[str, Any]:
    """Sort key: when a row was written (ISO time to the second), then the store's row order."""
    return (row["ingested_at"] or "", row["ref"])


def _plan_document(doc_id: str, rows: list[Row]) -> tuple[list[Problem], list[Any]]:
    """One document's problems and the refs of the rows a repair deletes (all but the newest
    version, and all but the last-written row of each chunk id within it)."""
    problems = [
        Problem("duplicate_chunk_id", cid, f"stored {n} times", n)
        for cid, n in Counter(r["chunk_id"] for r in rows).items()
        if n > 1
    ]
    versions: dict[tuple[str | None, str | None], list[Row]] = defaultdict(list)
    for r in rows:
        versions[(r["doc_hash"], r["pipeline_hash"])].append(r)
    newest = max(versions, key=lambda k: max(map(_written, versions[k])))
    drop: list[Any] = []
    for key, vrows in versions.items():
        if key != newest:
            drop += [r["ref"] for r in vrows]
            problems.append(
                Problem(
                    "orphan_chunks",
                    doc_id,
                    f"{len(vrows)} rows of an older version (doc_hash {key[0]}, pipeline {key[1]}) beside the "
                    f"newest (doc_hash {newest[0]}, pipeline {newest[1]})",
                    len(vrows),
                )
            )
    by_id: dict[str, list[Row]] = defaultdict(list)
    for r in versions[newest]:
        by_id[r["chunk_id"]].append(r)
    for same in by_id.values():
        drop += [r["ref"] for r in sorted(same, key=_written)[:-1]]
    return problems, drop


def scan_rows(rows: pa.Table) -> RowScan:
    """Duplicate chunk ids and orphan chunks among ``rows`` (``Store.stored_rows``), and the repair plan.

    Per document, one vectorised group-by counts rows, distinct chunk ids, and distinct doc and
    pipeline hashes (a document has two versions exactly when one of these has two values); only
    the documents where those disagree are planned row by row."""
    all_values = pc.CountOptions(mode="all")  # a null hash is a value too
    per_doc = rows.group_by("doc_id").aggregate(
        [
            ("chunk_id", "count", all_values),
            ("chunk_id", "count_distinct", all_values),
            ("doc_hash", "count_distinct", all_values),
            ("pipeline_hash", "count_distinct", all_values),
        ]
    )
    scan = RowScan(rows=rows.num_rows, documents=per_doc.num_rows)
    scan.chunks = int(pc.sum(per_doc.column("chunk_id_count_distinct")).as_py() or 0)
    bad = pc.or_(
        pc.not_equal(per_doc.column("chunk_id_count"), per_doc.column("chunk_id_count_distinct")),
        pc.or_(
            pc.greater(per_doc.column("doc_hash_count_distinct"), 1),
            pc.greater(per_doc.column("pipeline_hash_count_distinct"), 1),
        ),
    )
    suspect = per_doc.filter(bad).column("doc_id")
    if not len(suspect):
        return scan
    detail = rows.filter(pc.is_in(rows.column("doc_id"), value_set=suspect.combine_chunks()))
    detail = detail.sort_by([("doc_id", "ascending"), ("ref", "ascending")])
    for doc_id, group in groupby(detail.to_pylist(), key=lambda r: r["doc_id"]):
        problems, drop = _plan_document(doc_id, list(group))
        scan.problems += problems
        scan.redundant += drop
        scan.affected.append(doc_id)
    return scan


def check_store(store: Store) -> CheckReport:
    """Every check of the module docstring, read-only (no lock: a check during a write may report
    the write's half-recorded counts; run it again, or under ``repair_store``)."""
    scan = scan_rows(store.stored_rows())
    report = CheckReport(**scan.__dict__)
    versions = store.list_versions()
    last = versions[-1] if versions else None
    report.version = last.version if last else None
    if last is None and scan.rows:
        report.problems.append(
            Problem("count_mismatch", "index version", f"{scan.rows} chunks stored but no index version recorded")
        )
    elif last is not None and (last.documents, last.chunks) != (scan.documents, scan.rows):
        report.problems.append(
            Problem(
                "count_mismatch",
                f"version {last.version}",
                f"recorded {last.documents} documents and {last.chunks} chunks; "
                f"the table holds {scan.documents} documents and {scan.rows} chunks",
            )
        )
    for m in store.recount_statistics():
        detail = f"{m.stored} stored, {m.counted} counted" + (f"; {m.note}" if m.note else "")
        report.problems.append(Problem("statistics", m.name, detail))
    return report


def repair_store(store: Store, on_wait: WaitFn | None = None) -> RepairReport:
    """Check and repair under the writer lock (``store.writing('repair', on_wait)``): delete the
    redundant rows in one commit, recount the store's statistics, record an index version (updated =
    the documents repaired), then check again. Nothing is written when the check finds nothing.
    Raises StoreError as ``Store.writing`` does."""
    with store.writing("repair", on_wait):
        found = check_store(store)
        if found.ok:
            return RepairReport(found, 0, [], None, found)
        removed = store.drop_rows(found.redundant) if found.redundant else 0
        recounted = [m.name for m in store.recount_statistics(apply=True)]
        version = store.record_version(0, len(found.affected), 0, found.affected).version
        after = check_store(store)
    return RepairReport(found, removed, recounted, version, after)
