"""The Store protocol: what the pipeline needs from any chunk store (embedded LanceDB, PostgreSQL).

Contract every implementation keeps:
- ``replace_documents`` is atomic: after a crash either all of a batch's documents have their new
  chunks and none of their old ones, or the batch left no trace.
- Filters are pre-filters: a filtered search returns ``top_k`` rows whenever that many match.
- Access control (``Access``) is part of every read's WHERE clause, never applied after ranking.
- Vector scores are cosine similarities in [-1, 1]; keyword scores are BM25 (higher is better).
- One writer at a time: every write to a knowledge base (an ingest run, a delete, reindex, rollback,
  repair) happens inside ``writing()``, an inter-process lock held for the whole operation, so two
  runs never interleave their batches (which left duplicate chunk ids and rows of two versions of a
  document). Readers never wait for it.
- A ``RankingStore`` may also rank without reading chunk rows (``vector_ranking`` /
  ``keyword_ranking``, same pre-filters) and read only the rows a caller keeps (``chunks_at``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pyarrow as pa

from groundwork.filters import Filter
from groundwork.types import Access, Chunk, DocumentInfo, IndexVersion, SearchHit

# Fields every chunk has, filterable like metadata fields.
BUILTIN_FIELDS = ("doc_id", "source", "title", "page", "position")

WaitFn = Callable[[str], None]  # told once, in words, that a write waits for another writer
log = logging.getLogger("groundwork.index")


# The columns of ``Store.stored_rows``: ``ref`` is the store's handle for exactly one row, even among
# rows with the same chunk id (LanceDB: the row id, int64; PostgreSQL: the chunk id, its primary key),
# which ``Store.drop_rows`` takes back; ``ingested_at`` is the write's UTC time, ISO 8601 to the second.
ROW_COLUMNS = ("ref", "chunk_id", "doc_id", "doc_hash", "pipeline_hash", "ingested_at")


@dataclass(frozen=True, slots=True)
class StatisticMismatch:
    """A statistic the store keeps beside the chunks (BM25's corpus size, document frequencies)
    that differs from a recount: ``stored`` and ``counted`` values, ``note`` details (e.g. how many
    lexemes differ)."""

    name: str
    stored: int
    counted: int
    note: str = ""


_UNSAFE = re.compile(r"[^\w .:@/()+-]")


def announce_wait(on_wait: WaitFn | None, holder: str, details: str = "") -> None:
    """Say once that a write waits for another writer: ``on_wait(message)``, or a warning on the
    ``groundwork.index`` logger (the CLI prints those on stderr). ``holder`` (what the other writer
    does, e.g. 'ingest') and ``details`` come from a file or a database another process wrote, so
    only plain characters of them are shown, at most 200."""
    holder = _UNSAFE.sub("", holder)[:40] or "unknown"
    details = _UNSAFE.sub("", details)[:200]
    message = f"waiting for another writer ({holder}) to finish..." + (f" ({details})" if details else "")
    if on_wait is None:
        log.warning(message)
    else:
        on_wait(message)


@runtime_checkable
class Store(Protocol):
    @property
    def exists(self) -> bool:
        """Whether anything was ever written (the model is recorded on the first write)."""
        ...

    def check_model(self, model_id: str, dimension: int) -> None:
        """Raise ModelMismatchError when the index was built with another model (first write records it)."""
        ...

    def replace_documents(self, doc_hashes: Mapping[str, str], chunks: Sequence[Chunk], pipeline_hash: str) -> None:
        """Atomically replace all chunks of the documents ``doc_hashes`` names (doc_id -> content hash)
        by ``chunks`` (each with ``vector`` set); ``pipeline_hash`` identifies the chunker settings."""
        ...

    def delete_documents(self, doc_ids: Sequence[str]) -> int:
        """Delete every chunk of ``doc_ids`` in one commit; returns the number of chunks deleted."""
        ...

    def vector_search(
        self, vector: np.ndarray, top_k: int, where: Filter | None = None, access: Access | None = None
    ) -> list[SearchHit]:
        """Nearest chunks by cosine similarity to ``vector`` ((dim,) float32, L2-normalised), among
        the chunks ``access`` may see (a pre-filter inside the query; None = all)."""
        ...

    def keyword_search(
        self, query: str, top_k: int, where: Filter | None = None, access: Access | None = None
    ) -> list[SearchHit]:
        """Best chunks by BM25 over title, headings and text, among the chunks ``access`` may see."""
        ...

    def list_documents(self, access: Access | None = None) -> list[DocumentInfo]: ...

    def document_chunks(self, doc_id: str, access: Access | None = None) -> list[Chunk]:
        """One document's chunks in order; [] when missing or not visible to ``access``."""
        ...

    def count_chunks(self) -> int: ...

    def record_options(self) -> dict[str, dict[str, Any]]:
        """Records files (their source) -> the options they were last ingested with
        (``text_field``, ``id_field``, ``metadata_fields``), so a re-ingest need not repeat them."""
        ...

    def save_record_options(self, source: str, options: dict[str, Any]) -> None:
        """Remember the options a records file was ingested with."""
        ...

    def metadata_kinds(self) -> dict[str, str] | None:
        """The kind of value each metadata field holds (number, integer, bool, string), which a new
        value must match; None when the store keeps any kind per value."""
        ...

    def filter_fields(self) -> set[str]:
        """Field names a filter may use: BUILTIN_FIELDS plus every metadata field seen at ingest."""
        ...

    def optimize(self) -> None:
        """Compact storage, bring indexes up to date, and remove storage versions past retention."""
        ...

    def record_version(
        self, added: int, updated: int, deleted: int, changed_doc_ids: Sequence[str]
    ) -> IndexVersion: ...

    def list_versions(self) -> list[IndexVersion]: ...

    def current_version(self) -> int | None:
        """The latest index version number (1, 2, ... without gaps), or None before the first."""
        ...

    def reembed(self, model_id: str, dimension: int, embed: Callable[[list[str]], np.ndarray], batch: int = 256) -> int:
        """Replace every chunk's vector by ``embed(search texts)`` in one commit; returns the count."""
        ...

    def rollback(self) -> dict[str, Any]:
        """Undo the last ``reembed``; returns the restored model's record. Raises StoreError when none."""
        ...

    # -- one writer at a time, and consistency checks (see groundwork.index.check) ------------------
    def writing(self, operation: str = "write", on_wait: WaitFn | None = None) -> AbstractContextManager[None]:
        """Hold the knowledge base's writer lock for the ``with`` block; ``operation`` ('ingest',
        'delete', ...) is shown to writers that wait. When another process holds it, ``on_wait`` is
        told once (see ``announce_wait``), then the call waits up to ``index.writer_timeout_s``
        (unset: as long as the other writer runs). Re-entrant within a thread; other threads wait.
        On entry the store re-reads what other processes wrote. Raises StoreError on timeout or
        when the lock cannot be taken (e.g. the folder is read-only)."""
        ...

    def stored_rows(self) -> pa.Table:
        """Every stored chunk row, duplicates included, as a table of ``ROW_COLUMNS`` (no text, no
        vectors: one narrow scan, ~70 bytes a row)."""
        ...

    def drop_rows(self, refs: Sequence[Any]) -> int:
        """Delete exactly the rows ``refs`` (``stored_rows``' ``ref``) name, in one commit, keeping any
        derived statistics exact; returns the number of rows deleted."""
        ...

    def recount_statistics(self, apply: bool = False) -> list[StatisticMismatch]:
        """Recount the statistics the store keeps beside the chunks; returns those that differ from
        the recount ([] for a store that keeps none). With ``apply``, the recount replaces them."""
        ...


@dataclass(frozen=True, slots=True)
class RankedRef:
    """One hit of a ranking that read no chunk row: the chunk id, the list's score (cosine or BM25,
    as ``vector_search`` / ``keyword_search`` give it) and ``ref``, the store's handle to read the row
    afterwards (LanceDB: the row id in the version searched)."""

    chunk_id: str
    score: float
    ref: Any


@runtime_checkable
class RankingStore(Protocol):
    """A store that ranks first and reads chunk rows afterwards, for only the hits a caller keeps
    (late materialisation): hybrid search fuses two lists of ``retrieval.candidates`` ids and keeps
    ``top_k``, so reading every candidate's text and vector was wasted work (bench/hybrid_latency.py)."""

    def vector_ranking(
        self, vector: np.ndarray, top_k: int, where: Filter | None = None, access: Access | None = None
    ) -> list[RankedRef]:
        """The ranking ``vector_search`` returns, as ids, scores and refs only (the same pre-filters)."""
        ...

    def keyword_ranking(
        self, query: str, top_k: int, where: Filter | None = None, access: Access | None = None
    ) -> list[RankedRef]:
        """The ranking ``keyword_search`` returns, as ids, scores and refs only (the same pre-filters)."""
        ...

    def chunks_at(self, refs: Sequence[RankedRef]) -> list[Chunk] | None:
        """The chunks (``vector`` set) of ``refs`` from the rankings above, in their order; None when a
        row is no longer where its ref says (a concurrent write moved it): the caller then searches
        again with ``vector_search`` / ``keyword_search``."""
        ...


@runtime_checkable
class MigratableStore(Store, Protocol):
    """A store ``groundwork migrate`` can copy from and into (both stores are)."""

    @property
    def path(self) -> Any:
        """Where the store is (a folder, a bucket URI, or a redacted DSN with its schema), for messages."""
        ...

    def model_info(self) -> dict[str, Any] | None:
        """The embedding model recorded on the first write: {"model_id": str, "dimension": int}; None before."""
        ...

    def export_rows(self) -> Iterator[dict[str, Any]]:
        """Every chunk as a dict of its stored columns (``vector`` (dim,) float32, ``metadata`` a dict,
        ``acl_groups`` a list or None)."""
        ...

    def import_rows(self, rows: Sequence[dict[str, Any]]) -> None:
        """Write exported rows of whole documents, in one commit per call."""
        ...

    def import_versions(self, versions: Sequence[IndexVersion]) -> None:
        """Append the index versions of another store (the version history moves with the chunks)."""
        ...

    def close(self) -> None: ...
