"""Copy a knowledge base between stores (LanceDB <-> PostgreSQL) without re-embedding.

Every chunk row moves with its vector, metadata, access control, hashes and ingest time; the index
version history moves too. The copy is verified: chunk and document counts, and a checksum over
(chunk id, document id, text, vector bytes as float32) in chunk-id order, computed on both sides.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from groundwork.errors import StoreError
from groundwork.index.store import MigratableStore


@dataclass
class MigrationReport:
    chunks: int
    documents: int
    versions: int
    source_checksum: str
    target_checksum: str
    seconds: float

    @property
    def verified(self) -> bool:
        return self.source_checksum == self.target_checksum

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "verified": self.verified}


def checksum(rows: Iterable[dict[str, Any]]) -> tuple[str, int, int]:
    """(sha256 hex, chunks, documents) over rows sorted by chunk id."""
    h = hashlib.sha256()
    n, docs = 0, set()
    for r in sorted(rows, key=lambda r: r["chunk_id"]):
        h.update(f"{r['chunk_id']}\x00{r['doc_id']}\x00{r['text']}\x00".encode())
        h.update(np.asarray(r["vector"], dtype=np.float32).tobytes())
        n += 1
        docs.add(r["doc_id"])
    return h.hexdigest(), n, len(docs)


def migrate_kb(source: MigratableStore, target: MigratableStore, batch: int = 2000) -> MigrationReport:
    """Copy ``source`` into the empty ``target`` and verify it. Raises StoreError when the source is
    empty, the target already holds chunks, or the verification fails."""
    t0 = time.perf_counter()
    if not source.exists:
        raise StoreError(f"nothing to migrate: no knowledge base at {source.path}")
    if target.count_chunks():
        raise StoreError(
            f"the target {target.path} already holds {target.count_chunks()} chunks; migrate into an empty store"
        )
    model = source.model_info()
    if model is None:
        raise StoreError(f"nothing to migrate: no embedding model recorded in {source.path}")
    target.check_model(model["model_id"], int(model["dimension"]))
    rows = sorted(source.export_rows(), key=lambda r: (r["doc_id"], r["position"]))
    start = 0
    while start < len(rows):  # batches end on document boundaries: a document is written whole
        end = min(start + batch, len(rows))
        while end < len(rows) and rows[end]["doc_id"] == rows[end - 1]["doc_id"]:
            end += 1
        target.import_rows(rows[start:end])
        start = end
    versions = source.list_versions()
    target.import_versions(versions)
    target.optimize()
    src_sum, n, docs = checksum(rows)
    dst_sum, n2, docs2 = checksum(target.export_rows())
    report = MigrationReport(n, docs, len(versions), src_sum, dst_sum, round(time.perf_counter() - t0, 2))
    if (n, docs) != (n2, docs2) or not report.verified:
        raise StoreError(
            f"verification failed: source {n} chunks / {docs} documents / {src_sum[:12]}, "
            f"target {n2} / {docs2} / {dst_sum[:12]}"
        )
    return report
