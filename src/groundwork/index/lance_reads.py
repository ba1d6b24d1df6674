"""Query-time reads of the LanceDB chunk table that skip LanceDB's synchronous query layer.

LanceDB's sync Python API runs every query on its background event loop and pulls the batches back
one hop at a time: about 4.5 ms per query on a 2-core machine even for a one-row read, against 0.6 ms
for the same read through pylance (the Lance API LanceDB is built on) and 1.5 ms through LanceDB's
async API (``bench/query_parts.py``, docs/benchmarks.md "Reading past LanceDB's query layer"). A hybrid search made
three such reads, so the overhead alone was a large share of a 15 ms budget. These reads move here:

- ``LatestDataset``: the table as a pylance ``LanceDataset``, moved to the newest committed version
  before a read (at most ``index.read_consistency_s`` stale, as LanceDB's own reads are), so a
  search through it sees every write, from any process, that a LanceDB read would see;
- ``ann_ranking``: the HNSW search of a query with no pre-filter (one with a filter stays on LanceDB,
  whose time budget can cancel a long pre-filter scan);
- ``FlatVectors``: exact (flat) cosine search from an in-process copy of the table's vectors, for
  tables without an ANN index (below ``index.ann_min_rows``): one matrix-vector product
  (11k x 384: ~1 ms) instead of LanceDB decoding the vector column on every query (~18 ms). The copy
  is tied to one table version and reloaded when the version changes; memory is rows x dimension x 4
  bytes (100k x 384: 154 MB).

Reading rows by row id uses ``LanceDataset._take_rows``, marked unstable by pylance; the version is
pinned (constraints.txt) and the store contract tests exercise it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from groundwork.index.store import RankedRef


class LatestDataset:
    """The newest committed version of one LanceDB table, as a pylance dataset.

    ``table`` is a LanceDB ``Table``; ``max_stale_s`` is how long a version may be used before the
    newest version is looked up again (0: before every read; the lookup reads the version hint of
    the table's folder, ~0.05 ms locally)."""

    def __init__(self, table: Any, max_stale_s: float) -> None:
        self.table = table
        self._max_stale_s = max_stale_s
        self._ds: Any = None
        self._checked = 0.0
        self._lock = threading.Lock()

    def get(self) -> Any:
        """The pylance ``LanceDataset`` at the newest version (a new object when the version moved:
        callers holding the previous one keep a consistent view)."""
        now = time.monotonic()
        with self._lock:
            ds = self._ds
            if ds is None:
                ds = self.table.to_lance()
            elif now - self._checked >= self._max_stale_s:
                newest = ds.latest_version
                if newest != ds.version:
                    ds = ds.checkout_version(newest)
            self._ds, self._checked = ds, now
            return ds


class FlatVectors:
    """Exact cosine ranking over an in-process copy of one table version's vectors.

    Shapes: the copy is ``(n, d)`` float32, each row L2-normalised (a zero vector stays zero and
    scores 0); row ids ``(n,)`` uint64 (Lance row ids of that version). Scores are cosine similarity,
    as LanceDB's ``1 - cosine distance`` gives them; ties are broken by row id, ascending."""

    def __init__(self) -> None:
        self._version: int | None = None
        self._rows = np.zeros(0, np.uint64)
        self._ids: list[str] = []
        self._unit = np.zeros((0, 0), np.float32)
        self._lock = threading.Lock()

    def _current(self, ds: Any) -> tuple[np.ndarray, list[str], np.ndarray]:
        with self._lock:
            if self._version != ds.version:
                table = ds.to_table(columns=["chunk_id", "vector"], with_row_id=True)
                self._rows, self._ids, self._unit = _unit_rows(table)
                self._version = ds.version
            return self._rows, self._ids, self._unit

    def ranking(self, ds: Any, vector: np.ndarray, top_k: int, allowed: np.ndarray | None = None) -> list[RankedRef]:
        """The ``top_k`` rows of ``ds`` (a pylance dataset) most similar to ``vector`` ``(d,)``, best
        first, as ``RankedRef(chunk_id, cosine, row id)``; only rows whose id is in ``allowed``
        (uint64 row ids) when it is given."""
        rows, ids, unit = self._current(ds)
        if not len(rows) or top_k <= 0:
            return []
        q = np.asarray(vector, dtype=np.float32)
        norm = float(np.linalg.norm(q))
        # einsum, not ``@``: OpenBLAS splits a matrix-vector product over its threads, and with another
        # process on the second core the split product took 8 ms against 1.8 ms on one thread.
        scores = np.einsum("ij,j->i", unit, q / norm if norm else q)
        candidates = np.arange(len(rows))
        if allowed is not None:
            candidates = np.flatnonzero(np.isin(rows, allowed, assume_unique=True))
            scores = scores[candidates]
        k = min(top_k, len(candidates))
        top = np.argpartition(-scores, k - 1)[:k] if k < len(candidates) else np.arange(len(candidates))
        top = top[np.lexsort((rows[candidates[top]], -scores[top]))]
        return [RankedRef(ids[candidates[i]], float(scores[i]), int(rows[candidates[i]])) for i in top]


def _unit_rows(table: pa.Table) -> tuple[np.ndarray, list[str], np.ndarray]:
    col = table.column("vector").combine_chunks()
    matrix = np.asarray(col.flatten().to_numpy(zero_copy_only=False), dtype=np.float32).reshape(len(col), -1)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    unit = np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)
    rows = np.asarray(table.column("_rowid").to_numpy(), dtype=np.uint64)
    return rows, table.column("chunk_id").to_pylist(), unit


def ann_ranking(ds: Any, vector: np.ndarray, top_k: int, ef: int, refine_factor: int) -> list[RankedRef]:
    """The ``top_k`` nearest rows of ``ds`` (a pylance dataset with an HNSW index on ``vector``) by
    cosine, best first, as ``RankedRef(chunk_id, 1 - cosine distance, row id)``: LanceDB's own vector
    query (same index, ``ef``, ``refine_factor``; 0 = no refine), without its query layer."""
    nearest = {"column": "vector", "q": np.asarray(vector, np.float32), "k": top_k, "metric": "cosine", "ef": ef}
    if refine_factor:
        nearest["refine_factor"] = refine_factor
    table = ds.to_table(
        columns=["chunk_id", "_distance"], with_row_id=True, nearest=nearest, disable_scoring_autoprojection=True
    )
    ids, distances, rows = (table.column(c).to_pylist() for c in ("chunk_id", "_distance", "_rowid"))
    return [RankedRef(c, 1.0 - float(d), r) for c, d, r in zip(ids, distances, rows)]


def take_rows(ds: Any, row_ids: Sequence[int], columns: list[str]) -> pa.Table:
    """The rows of ``ds`` (a pylance dataset) with these Lance row ids, with a ``_rowid`` column;
    deleted or unknown ids are left out, the order is not guaranteed. Raises what pylance raises
    for a row of a fragment that no longer exists (OSError, ValueError, RuntimeError)."""
    return ds._take_rows(list(row_ids), columns=[*columns, "_rowid"])
