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
- ``TableCopy``: for tables without an ANN index (below ``index.ann_min_rows``), exact (flat) cosine
  search from an in-process copy of the table's vectors (one matrix-vector product, 11k x 384: ~0.6 ms,
  instead of LanceDB decoding the vector column on every query, ~18 ms), and the kept rows read from
  the same copy when the table's data fits ``index.memory_rows_max_mb``. The copy is tied to one table
  version and reloaded when the version changes; memory is rows x dimension x 4 bytes for the
  vectors (100k x 384: 154 MB) plus the row columns (SciFact's 11k chunks: 13 MB).

Reading rows by row id uses ``LanceDataset._take_rows``, marked unstable by pylance; the version is
pinned (constraints.txt) and the store contract tests exercise it.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa

from groundwork.index.store import RankedRef

log = logging.getLogger(__name__)


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

    def refresh(self) -> None:
        """Look the newest version up at the next ``get``, however recent the last lookup."""
        with self._lock:
            self._checked = float("-inf")

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


@dataclass(frozen=True)
class _Copy:
    """One table version held in memory (see ``TableCopy``)."""

    version: int
    row_ids: np.ndarray  # (n,) uint64 Lance row ids
    chunk_ids: list[str]
    vectors_t: np.ndarray  # (d, n) float32, as stored, transposed (see TableCopy.ranking)
    inverse_norms: np.ndarray  # (n,) float32; 0 for a zero vector, which then scores 0
    rows: pa.Table | None  # the other columns asked for, one chunk per column; None: over the byte cap
    position: dict[int, int]  # row id -> index into the arrays above


class TableCopy:
    """Exact cosine ranking, and row reads, from an in-process copy of one table version.

    The copy holds the vectors (``(n, d)`` float32, as stored, kept transposed), their row ids
    (``(n,)`` uint64, Lance row ids of that version) and chunk ids, and, while the copy fits in
    ``max_row_bytes`` of memory, the ``columns`` given too, so the rows a search keeps are read from
    memory (~0.6 ms for 10 rows, against ~2 ms through pylance's take at 11k chunks, ~8 ms at 100k,
    and ~6 ms through LanceDB at 11k). Scores are cosine similarity, as LanceDB's ``1 - cosine
    distance`` gives them; ties are broken by row id, ascending.

    The memory bound: before a load the size is estimated as the data's bytes on disk (pylance data
    statistics; Lance compresses text) times the memory-to-disk ratio of the last load with rows (at
    least 1); after a load the copy's real size (Arrow buffers, vectors, ~160 bytes a row of ids) is
    checked, and a copy over the bound keeps no rows. While a version loads, the previous copy and up to
    two tables of the new one are in memory.

    Two ways to keep it current: ``current`` (the exact search, which needs this version's vectors)
    loads the dataset's version, vectors and ids only, before it answers (100k chunks: 0.8 s
    against 1.1 s with every column, on the first search after a write); ``take`` never waits: when the
    copy is of another version, or holds no rows, it starts loading the newest version with its rows
    in a background thread (one load at a time, and, after a load that took t seconds, none for 10 t,
    so reloads cost at most a tenth of a core under a stream of writes) and answers None, and the
    caller reads the files."""

    _ROW_OVERHEAD = 160  # bytes a row of the id dict and list take beyond the Arrow buffers
    _RETRY_S = 30.0  # after a failed background load, the files serve this long before another try

    def __init__(self, columns: Sequence[str] = (), max_row_bytes: int = 0) -> None:
        self.columns = list(columns)
        self.max_row_bytes = max_row_bytes
        self._copy: _Copy | None = None
        self._lock = threading.Lock()
        self._loader: threading.Thread | None = None
        self._next_load = 0.0  # monotonic time before which ``take`` starts no load
        self._over_cap: int | None = None  # a version whose copy is over max_row_bytes
        self._ratio = 1.0  # memory bytes per byte on disk, from the last load with rows

    @property
    def version(self) -> int | None:
        """The table version held, None before the first load."""
        return self._copy.version if self._copy else None

    @property
    def copies_rows(self) -> bool:
        return bool(self.columns) and self.max_row_bytes > 0

    def current(self, ds: Any) -> _Copy:
        """The copy of ``ds``'s version (a pylance dataset), loaded when it is not the one held."""
        with self._lock:
            if self._copy is None or self._copy.version != ds.version:
                self._copy = _load(ds, [])  # the rows follow in the background (take)
            return self._copy

    def _fits(self, ds: Any) -> bool:
        """Whether ``ds``'s copy with rows is expected to fit the bound (see the class; ~3 ms)."""
        if not self.copies_rows or self._over_cap == ds.version:
            return False
        if _data_bytes(ds) * self._ratio <= self.max_row_bytes:
            return True
        self._over_cap = ds.version
        return False

    def _timed_load(self, ds: Any, with_rows: bool) -> _Copy:
        t0 = time.monotonic()
        copy = _load(ds, self.columns if with_rows else [])
        if copy.rows is not None:
            size = copy.rows.nbytes + copy.vectors_t.nbytes + self._ROW_OVERHEAD * len(copy.row_ids)
            self._ratio = max(1.0, size / max(_data_bytes(ds), 1))
            if size > self.max_row_bytes:
                self._over_cap = ds.version
                copy = dataclasses.replace(copy, rows=None)
        done = time.monotonic()
        self._next_load = done + 10 * (done - t0)
        return copy

    def _load_in_background(self, ds: Any) -> None:
        """Start loading ``ds``'s version with its rows unless a load (or ``current``'s) runs, the
        last one was too recent or this version is known to be over the bound. Never waits: the search
        thread only looks and starts a thread."""
        if not self.copies_rows or self._over_cap == ds.version or time.monotonic() < self._next_load:
            return
        if not self._lock.acquire(blocking=False):
            return
        try:
            if self._loader is not None and self._loader.is_alive():
                return
            # Not a daemon: the exit waits for it (see ``_load``).
            self._loader = threading.Thread(target=self._load_latest, args=(ds,), name="table-copy")
            self._loader.start()
        finally:
            self._lock.release()

    def _load_latest(self, ds: Any) -> None:
        """The background load: ``ds``'s copy with rows, or, over the bound, none (the stale copy is
        dropped: it can never answer again)."""
        try:
            copy = self._timed_load(ds, True) if self._fits(ds) else None
        except BaseException as exc:  # e.g. the version cleaned up meanwhile: the files serve
            if not isinstance(exc, Exception) and not is_panic(exc):
                raise
            log.debug("background copy of version %s failed", ds.version, exc_info=True)
            self._next_load = time.monotonic() + self._RETRY_S  # never a failing load per search
            return
        with self._lock:
            held = self._copy
            if copy is not None and copy.rows is not None:
                if held is None or held.version <= copy.version:
                    self._copy = copy
            elif held is not None and held.version < ds.version:
                self._copy = None  # stale, and no copy of the newer version fits: it would never answer

    def ranking(self, ds: Any, vector: np.ndarray, top_k: int, allowed: np.ndarray | None = None) -> list[RankedRef]:
        """The ``top_k`` rows of ``ds`` (a pylance dataset) most similar to ``vector`` ``(d,)``, best
        first, as ``RankedRef(chunk_id, cosine, row id)``; only rows whose id is in ``allowed``
        (uint64 row ids) when it is given."""
        copy = self.current(ds)
        rows = copy.row_ids
        if not len(rows) or top_k <= 0:
            return []
        q = np.asarray(vector, dtype=np.float32)
        norm = float(np.linalg.norm(q))
        with _one_blas_thread():
            scores = (q / norm if norm else q) @ copy.vectors_t
        scores *= copy.inverse_norms
        candidates = np.arange(len(rows))
        if allowed is not None:
            candidates = np.flatnonzero(np.isin(rows, allowed, assume_unique=True))
            scores = scores[candidates]
        k = min(top_k, len(candidates))
        top = np.argpartition(-scores, k - 1)[:k] if k < len(candidates) else np.arange(len(candidates))
        top = top[np.lexsort((rows[candidates[top]], -scores[top]))]
        ids, chosen = copy.chunk_ids, candidates[top]
        return [
            RankedRef(ids[j], score, row)
            for j, score, row in zip(chosen.tolist(), scores[top].tolist(), rows[chosen].tolist())
        ]

    def holds(self, ds: Any) -> bool:
        """Whether the copy is of ``ds``'s version and holds its rows."""
        copy = self._copy
        return copy is not None and copy.version == ds.version and copy.rows is not None

    def take(self, ds: Any, row_ids: Sequence[int], load: bool = True) -> tuple[pa.Table, np.ndarray] | None:
        """The rows with these row ids, in this order, from the copy of ``ds``'s version: (the copied
        columns, their vectors ``(len(row_ids), d)`` float32). None when the copy is of another version
        or holds no rows (with ``load``, a background load of ``ds`` with its rows starts, see the
        class), or lacks one of the ids."""
        copy = self._copy
        if copy is None or copy.version != ds.version or copy.rows is None:
            if load:
                self._load_in_background(ds)
            return None
        where = [copy.position.get(int(r)) for r in row_ids]
        if None in where:
            return None
        return copy.rows.take(where), np.ascontiguousarray(copy.vectors_t[:, where].T)


class _Closing(Exception):
    """The interpreter is shutting down: a background load stops between batches."""


def _load(ds: Any, columns: list[str]) -> _Copy:
    """Read one version's copy in one scan: ids and vectors, and ``columns`` (none: no rows).

    Raises ``_Closing`` when the main thread has ended (the interpreter is shutting down) between two
    batches: the background loader is a non-daemon thread, so the exit waits for it, at most one batch.
    A daemon thread inside pylance at exit aborted the process (SIGABRT: CPython 3.11 ends a daemon
    thread that wakes after finalization with ``pthread_exit``, which cannot unwind through Rust frames)."""
    with_rows = bool(columns)
    wanted = [*columns, "vector"] if with_rows else ["chunk_id", "vector"]
    reader = ds.scanner(columns=list(dict.fromkeys(wanted)), with_row_id=True).to_reader()
    batches = []
    for batch in reader:
        if not threading.main_thread().is_alive():
            raise _Closing
        batches.append(batch)
    table = pa.Table.from_batches(batches, schema=reader.schema).combine_chunks()
    col = table.column("vector").combine_chunks()
    flat = np.asarray(col.flatten().to_numpy(zero_copy_only=False), dtype=np.float32)
    vectors = flat.reshape(len(col), -1) if len(col) else np.zeros((0, 0), np.float32)
    norms = np.linalg.norm(vectors, axis=1)
    inverse = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0).astype(np.float32)
    row_ids = np.asarray(table.column("_rowid").to_numpy(), dtype=np.uint64)
    rows = table.drop_columns(["vector", "_rowid"]) if with_rows else None
    position = {int(r): i for i, r in enumerate(row_ids)}
    vectors_t = np.ascontiguousarray(vectors.T)
    return _Copy(ds.version, row_ids, table.column("chunk_id").to_pylist(), vectors_t, inverse, rows, position)


_BLAS_LOCK = threading.Lock()


@contextmanager
def _one_blas_thread() -> Iterator[None]:
    """numpy's BLAS on one thread for the block (threadpoolctl; ~0.02 ms). The product ``q @ V`` with
    ``V`` ``(d, n)`` contiguous is one BLAS gemv: 0.5 ms for 11k x 384 on one thread against 1.7-2 ms
    for numpy's own einsum over ``(n, d)``. One thread, because OpenBLAS's second thread waits for a
    core the query encoder or the keyword search may hold (the split product once took 8 ms against
    1.8). The thread count is process-wide: the lock keeps concurrent searches from restoring each
    other's setting; other threads' BLAS calls inside the block run on one thread too."""
    with _BLAS_LOCK, _blas_controller().limit(limits=1, user_api="blas"):
        yield


@lru_cache(maxsize=1)
def _blas_controller() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()  # inspects the loaded libraries once (a few ms)


def _data_bytes(ds: Any) -> int:
    """Bytes on disk of the dataset's data files (pylance data statistics; ~3 ms)."""
    return sum(f.bytes_on_disk for f in ds.stats.data_stats().fields)


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
    deleted or unknown ids are left out, the order is not guaranteed.

    Raises:
        RuntimeError: a row of a fragment this version no longer has (every row of it deleted or
            compacted away): pylance 14 panics there (``pyo3_runtime.PanicException``, a
            BaseException that would pass every ``except Exception``), turned into RuntimeError.
        OSError, ValueError: what pylance raises for unreadable files."""
    try:
        return ds._take_rows(list(row_ids), columns=[*columns, "_rowid"])
    except BaseException as exc:
        if not is_panic(exc):
            raise
        raise RuntimeError(f"pylance could not read rows of version {ds.version}: {exc}") from None


def is_panic(exc: BaseException) -> bool:
    """Whether ``exc`` is a Rust panic surfaced by pyo3 (``pyo3_runtime.PanicException``, which
    derives from BaseException and cannot be imported by name)."""
    return type(exc).__name__ == "PanicException"
