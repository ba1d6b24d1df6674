"""The embedded store: LanceDB tables in a local folder (default ``./.groundwork``).

Layout: ``meta.json`` (model id, dimension, schema version, time of the last version cleanup),
``lancedb/chunks.lance`` (one row per chunk: text, vector, metadata columns ``meta_<field>``),
``lancedb/versions.lance`` (the change log shown by ``groundwork versions``), ``embeddings.sqlite``
(the embedding cache), ``writer.lock`` (the writer lock, an OS file lock: released by the kernel when
its process dies, so never stale) and, while a writer holds it, ``writer.json`` (what it does, its pid
and host, for waiting writers).

A batch of documents gets its new chunks and loses its old ones in one commit (an append when all are
new, else one Lance ``Update`` commit), so a crash leaves each batch all-or-nothing; a commit writes
only the batch, and ``optimize`` compacts by size tiers (``index/lance_storage.py``), so the cost and the disk
of a small write do not grow with the table. Low-level work goes through pylance, the Lance API that
LanceDB itself uses for compaction and version cleanup.
Keyword search is LanceDB's native full-text index (BM25, Robertson & Zaragoza 2009, with stemming and
stop words); vector search is exact (flat) until ``index.ann_min_rows`` chunks, then HNSW (IVF_HNSW_SQ).
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from groundwork.config import IndexSettings
from groundwork.errors import FilterError, QueryTimeoutError, StoreError
from groundwork.filters import Filter, to_sql
from groundwork.index.lance_reads import LatestDataset, TableCopy, ann_ranking, take_rows
from groundwork.index.lance_rows import (
    CHUNK_COLUMNS,
    access_sql,
    arrow_type,
    chunks_of,
    coerce,
    column_kind,
    filter_column,
    groups_tuple,
    groups_value,
    plain,
    ranked,
    similarity,
    sql_str,
    with_zero,
)
from groundwork.index.lance_storage import compact, index_segments, latest, maintain, swap_rows
from groundwork.index.rows import (
    check_same_model,
    chunk_from_row,
    embed_all,
    heading_value,
    unknown_fields,
)
from groundwork.index.store import (
    BUILTIN_FIELDS,
    ROW_COLUMNS,
    RankedRef,
    StatisticMismatch,
    WaitFn,
    announce_wait,
)
from groundwork.types import Access, Chunk, DocumentInfo, IndexVersion, SearchHit, parse_report

SCHEMA_VERSION = 1
_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class LanceStore:
    """The Store protocol on LanceDB. Opening creates nothing; the first write creates the tables.

    Raises:
        StoreError: the folder holds an index of an unknown schema version.
    """

    def __init__(self, path: str | Path, settings: IndexSettings | None = None) -> None:
        import lancedb

        self.settings = settings or IndexSettings()
        # An object-store URI (s3://bucket/path) keeps tables and meta.json in the bucket, no server needed.
        self.remote = isinstance(path, str) and "://" in path
        self.path: Any = path.rstrip("/") if self.remote else Path(path)
        self._meta_path = None if self.remote else self.path / "meta.json"
        self.meta: dict[str, Any] = self._read_meta()
        if self.meta and self.meta.get("schema") != SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: index schema {self.meta.get('schema')} is not supported (expected {SCHEMA_VERSION})"
            )
        options = dict(self.settings.storage_options) if self.remote else None
        # Every read sees the newest committed version, whoever wrote it (another process, a CLI
        # ingest while the server runs, another replica on the same bucket), at most this late.
        consistency = timedelta(seconds=self.settings.read_consistency_s)
        self._tables: dict[str, Any] = {}
        try:  # a local connection creates its folder: only once there is something to write
            self._connect = partial(
                lancedb.connect, f"{self.path}/lancedb", storage_options=options, read_consistency_interval=consistency
            )
            self._conn = self._connect() if self.remote or (self.path / "lancedb").is_dir() else None
        except Exception as exc:  # an unknown scheme or bad storage option
            raise StoreError(f"cannot open the knowledge base at {self.path}: {exc}") from None
        self._writer = threading.local()  # this thread's writer-lock depth (see writing())
        self._ann: bool | None = None  # whether the vector index exists; looked up once, reset by optimize()
        # query-time reads through pylance (index/lance_reads.py), by table name
        self._readers: dict[str, LatestDataset] = {}
        self._flat = TableCopy(CHUNK_COLUMNS, self.settings.memory_rows_max_mb * 2**20)
        if self._chunks is not None and "acl_tenant" not in self._chunks.schema.names:
            # Indexes written before access control: every document public (no tenant, no groups).
            self._chunks.add_columns({"acl_tenant": "CAST(NULL AS STRING)", "acl_groups": "CAST(NULL AS STRING)"})
        if self._chunks is not None and "context" not in self._chunks.schema.names:
            # Indexes written before context lines: no chunk has any (records re-ingested get them).
            self._chunks.add_columns({"context": "CAST('' AS STRING)"})

    # -- housekeeping -------------------------------------------------------------------------------
    def _open(self, name: str):
        if not self.remote and not (self.path / "lancedb" / f"{name}.lance").is_dir():
            return None  # reading a knowledge base that does not exist creates nothing
        try:
            return self._db.open_table(name)
        except (FileNotFoundError, ValueError):
            return None

    @property
    def _db(self) -> Any:
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    # The tables, opened on first use and again while they do not exist yet: another process may
    # create them after this one opened the knowledge base.
    @property
    def _chunks(self) -> Any:
        return self._table("chunks")

    @_chunks.setter
    def _chunks(self, table: Any) -> None:
        self._tables["chunks"] = table

    def _dataset(self, name: str = "chunks") -> Any:
        """A table (``chunks`` unless named) as a pylance dataset at its newest committed version
        (``LatestDataset``)."""
        table = self._table(name)
        reader = self._readers.get(name)
        if reader is None or reader.table is not table:
            reader = self._readers[name] = LatestDataset(table, self.settings.read_consistency_s)
        return reader.get()

    @property
    def _versions(self) -> Any:
        return self._table("versions")

    @_versions.setter
    def _versions(self, table: Any) -> None:
        self._tables["versions"] = table

    def _wrote(self) -> None:
        """This store committed: its next pylance read looks up the newest version whatever
        ``index.read_consistency_s`` allows (a writer sees its own writes, as through LanceDB)."""
        for reader in list(self._readers.values()):  # a search may add a reader meanwhile
            reader.refresh()

    def _table(self, name: str) -> Any:
        if self._tables.get(name) is None:
            self._tables[name] = self._open(name)
        return self._tables[name]

    @property
    def exists(self) -> bool:
        return self._chunks is not None

    def close(self) -> None:
        """Nothing to release: LanceDB holds no connection."""

    def _s3(self):
        from groundwork.objectstore import parse_s3_uri, s3_client

        if not self.path.startswith("s3://"):
            raise StoreError(f"{self.path}: only s3:// object stores are supported for the knowledge base")
        bucket, prefix = parse_s3_uri(self.path)
        return s3_client(self.settings.storage_options.get("aws_endpoint")), bucket, f"{prefix}/meta.json".lstrip("/")

    def _read_meta(self) -> dict[str, Any]:
        if not self.remote:
            return json.loads(self._meta_path.read_text()) if self._meta_path.is_file() else {}
        client, bucket, key = self._s3()
        try:
            return json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())
        except client.exceptions.NoSuchKey:
            return {}
        except Exception as exc:  # no such bucket, access denied, endpoint down
            raise StoreError(
                f"cannot read {self.path}/meta.json ({exc}); check the bucket, credentials and index.storage_options"
            ) from None

    def _write_meta(self) -> None:
        if self.remote:  # one PUT: an object is replaced whole, never half-written
            client, bucket, key = self._s3()
            client.put_object(Bucket=bucket, Key=key, Body=json.dumps(self.meta, indent=2).encode())
            return
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self._meta_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.meta, indent=2))
        os.replace(tmp, self._meta_path)  # atomic: a crash never leaves half a meta.json

    def check_model(self, model_id: str, dimension: int) -> None:
        if not self.remote or not self.meta:  # another process may have recorded (or changed) the model
            self.meta = self._read_meta()
        if not self.meta:
            self.meta = {
                "schema": SCHEMA_VERSION,
                "model_id": model_id,
                "dimension": dimension,
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            self._write_meta()
            return
        check_same_model(f"at {self.path}", self.meta, model_id, dimension, "ingest into a new --kb folder")

    def record_options(self) -> dict[str, dict[str, Any]]:
        """Records files -> the options (text_field, id_field, metadata_fields) they were ingested with."""
        return dict(self._read_meta().get("record_options", {}))

    def save_record_options(self, source: str, options: dict[str, Any]) -> None:
        self.meta = self._read_meta()
        if self.meta.get("record_options", {}).get(source) != options:
            self.meta.setdefault("record_options", {})[source] = options
            self._write_meta()

    def model_info(self) -> dict[str, Any] | None:
        """The recorded embedding model: {"model_id", "dimension"}, or None before the first write."""
        return {"model_id": self.meta["model_id"], "dimension": self.meta["dimension"]} if self.meta else None

    def _schema(self, dim: int, meta_types: dict[str, pa.DataType]) -> pa.Schema:
        cols = [
            ("chunk_id", pa.string()),
            ("doc_id", pa.string()),
            ("source", pa.string()),
            ("position", pa.int32()),
            ("text", pa.string()),
            ("search_text", pa.string()),
            ("title", pa.string()),
            ("heading", pa.string()),
            ("page", pa.int32()),
            ("content_hash", pa.string()),
            ("doc_hash", pa.string()),
            ("pipeline_hash", pa.string()),
            ("parent_id", pa.string()),
            ("parent_text", pa.string()),
            ("metadata", pa.string()),
            ("ingested_at", pa.string()),
            ("vector", pa.list_(pa.float32(), dim)),
            ("acl_tenant", pa.string()),
            ("acl_groups", pa.string()),
            ("context", pa.string()),
        ]
        cols += [(f"meta_{k}", t) for k, t in sorted(meta_types.items())]
        return pa.schema(cols)

    def _meta_columns(self) -> dict[str, pa.DataType]:
        if self._chunks is None:
            return {}
        return {f.name[5:]: f.type for f in self._chunks.schema if f.name.startswith("meta_")}

    def _ensure_columns(self, chunks: Sequence[Chunk]) -> dict[str, pa.DataType]:
        """Create the chunks table, or add a column for each metadata field not seen before."""
        known = self._meta_columns()
        new: dict[str, pa.DataType] = {}
        for c in chunks:
            for k, v in c.metadata.items():
                if k not in known and k not in new and v is not None and _FIELD_NAME.match(k):
                    new[k] = arrow_type(v)
        if self._chunks is None:
            dim = len(chunks[0].vector)
            self._chunks = self._db.create_table("chunks", schema=self._schema(dim, new), exist_ok=True)
            return new
        if new:
            sql = {"bool": "BOOLEAN", "int64": "BIGINT", "double": "DOUBLE", "string": "STRING"}
            self._chunks.add_columns({f"meta_{k}": f"CAST(NULL AS {sql[str(t)]})" for k, t in new.items()})
        return {**known, **new}

    # -- writes -------------------------------------------------------------------------------------
    def replace_documents(self, doc_hashes: Mapping[str, str], chunks: Sequence[Chunk], pipeline_hash: str) -> None:
        """One commit that gives the documents ``doc_hashes`` names exactly ``chunks``.

        A batch of new documents is a plain append. A batch that replaces indexed documents is one
        Lance ``Update`` commit: deletion vectors for the old chunks' rows (found through the
        ``doc_id`` B-tree index) and a new data file for the new chunks. Either way the commit writes
        only this batch's rows plus a few KB of metadata, whatever the size of the table; a crash
        before the commit leaves unreferenced files only (removed by cleanup), never half a batch.
        """
        doc_ids = list(doc_hashes)
        if not doc_ids:
            return
        if not chunks:
            self.delete_documents(doc_ids)
            return
        meta_types = self._ensure_columns(chunks)
        table = self._chunk_table(doc_hashes, chunks, pipeline_hash, meta_types)
        dataset = latest(self._chunks)
        old_rows = self._rows_of(dataset, doc_ids).to_table().column("_rowaddr")
        if len(old_rows) == 0:
            self._chunks.add(table)
        else:
            swap_rows(dataset, old_rows.to_numpy(), table)
            self._chunks.checkout_latest()
        self._ensure_indexes()
        self._wrote()

    def _chunk_table(
        self,
        doc_hashes: Mapping[str, str],
        chunks: Sequence[Chunk],
        pipeline_hash: str,
        meta_types: dict[str, pa.DataType],
    ) -> pa.Table:
        """The rows of ``chunks`` in the chunks table's schema."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        rows = []
        for c in chunks:
            row = {
                "chunk_id": c.chunk_id,
                "doc_id": c.doc_id,
                "source": c.source,
                "position": c.position,
                "text": c.text,
                "search_text": c.search_text,
                "title": c.title,
                "heading": heading_value(c.heading_path),
                "page": c.page,
                "content_hash": c.content_hash,
                "doc_hash": doc_hashes[c.doc_id],
                "pipeline_hash": pipeline_hash,
                "parent_id": c.parent_id,
                "parent_text": c.parent_text,
                "metadata": json.dumps(c.metadata, ensure_ascii=False, default=str),
                "ingested_at": now,
                "vector": np.asarray(c.vector, dtype=np.float32),
                "acl_tenant": c.tenant,
                "acl_groups": groups_value(c.allowed_groups),
                "context": c.context,
            }
            for k, t in meta_types.items():
                row[f"meta_{k}"] = coerce(c.metadata.get(k), t)
            rows.append(row)
        return pa.Table.from_pylist(rows, schema=self._chunks.schema)

    def _rows_of(self, dataset: Any, doc_ids: Sequence[str]) -> Any:
        """A Lance scanner of the row addresses of ``doc_ids``' chunks. Lance answers ``doc_id IN``
        from the ``doc_id`` B-tree for the fragments it covers and scans only the rows written since
        the last ``optimize`` (at most ``index.unindexed_max_rows`` plus one run's batches), so a
        write's lookup does not grow with the table (``bench/write_scale.py``)."""
        return dataset.scanner(columns=[], filter=f"doc_id IN ({self._in_list(doc_ids)})", with_row_address=True)

    def delete_documents(self, doc_ids: Sequence[str]) -> int:
        if not doc_ids or self._chunks is None:
            return 0
        before = self._chunks.count_rows()
        self._chunks.delete(f"doc_id IN ({self._in_list(doc_ids)})")
        self._wrote()
        return before - self._chunks.count_rows()

    @staticmethod
    def _in_list(values: Sequence[str]) -> str:
        return ", ".join("'" + v.replace("'", "''") + "'" for v in values)

    def _ensure_indexes(self) -> None:
        """Give a new table its full-text index and the B-tree on ``doc_id`` (which finds a document's
        rows without a scan) together, so both cover the same fragments. An existing table without the
        B-tree gets it from ``optimize``."""
        from lancedb.index import BTree

        if any(ix.index_type == "FTS" for ix in self._chunks.list_indices()):
            return  # rows written after the indexes were built are searched unindexed until optimize()
        self._ensure_fts()
        self._chunks.create_index("doc_id", config=BTree())

    def _ensure_fts(self) -> None:
        from lancedb.index import FTS

        if any(ix.index_type == "FTS" for ix in self._chunks.list_indices()):
            return  # rows written after the index was built are still searched (flat) until optimize()
        s = self.settings
        self._chunks.create_index(
            "search_text",
            replace=True,
            config=FTS(
                language=s.fts_language,
                stem=s.fts_stem,
                remove_stop_words=s.fts_remove_stop_words,
                ascii_folding=True,
                lower_case=True,
            ),
        )

    def optimize(self) -> None:
        """Index new rows, compact small fragments, drop deleted rows, and clean up old versions, each
        only when its policy says so, so a small ingest stays cheap (see ``maintain``). Builds the
        HNSW index once the table holds ``index.ann_min_rows`` chunks, and the ``doc_id`` B-tree on an
        index written before it existed."""
        from lancedb.index import BTree, HnswSq

        if self._chunks is None:
            return
        indexes = self._chunks.list_indices()
        if any(ix.index_type == "FTS" for ix in indexes) and not any(ix.columns == ["doc_id"] for ix in indexes):
            self._add_index("doc_id", BTree())
        if self._chunks.count_rows() >= self.settings.ann_min_rows and not self.has_ann_index():
            s = self.settings
            self._add_index(
                "vector", HnswSq(distance_type="cosine", m=s.hnsw_m, ef_construction=s.hnsw_ef_construction)
            )
        self._ann = None
        for table in (self._chunks, self._versions):
            if table is not None:
                maintain(table, self.settings)
        self._cleanup()
        self._wrote()

    def _add_index(self, column: str, config: Any) -> None:
        """Index ``column`` of a table that has rows: first every index is merged into one segment and
        the fragments compacted (one rewrite of the table), so the new index's later delta segments
        line up with the others' and size-tiered compaction can keep merging them."""
        for name, segments in index_segments(latest(self._chunks)).items():
            latest(self._chunks).optimize.optimize_indices(index_names=[name], num_indices_to_merge=len(segments))
        compact(self._chunks, [f.fragment_id for f in latest(self._chunks).get_fragments()], self.settings)
        self._chunks.create_index(column, config=config)

    def _cleanup(self) -> None:
        """Remove storage versions older than ``index.version_retention_hours`` (the rollback window
        of ``reembed``), at most every ``index.cleanup_interval_minutes``: a cleanup reads the
        manifest of every version it keeps, seconds with thousands of them."""
        now = datetime.now(UTC)
        last = self.meta.get("cleaned_at")
        if last and now - datetime.fromisoformat(last) < timedelta(minutes=self.settings.cleanup_interval_minutes):
            return
        retention = timedelta(hours=self.settings.version_retention_hours)
        for table in (self._chunks, self._versions):
            if table is not None:
                latest(table).cleanup_old_versions(older_than=retention, error_if_tagged_old_versions=False)
        if self.meta:  # recorded with the index's meta.json; never creates one
            self.meta["cleaned_at"] = now.isoformat(timespec="seconds")
            self._write_meta()

    def reembed(self, model_id: str, dimension: int, embed: Callable[[list[str]], np.ndarray], batch: int = 256) -> int:
        """Give every chunk a vector from another embedding model, as one new storage version.

        All vectors are computed first, then the table is rewritten in one commit, so a crash leaves
        the old model's index whole. ``meta.json`` then names the new model and keeps the previous
        model and storage version for ``rollback`` (possible while that version is within
        ``index.version_retention_hours``). Returns the number of chunks re-embedded.
        """
        if self._chunks is None:
            raise StoreError(f"no knowledge base at {self.path}")
        n = self._chunks.count_rows()
        table = self._chunks.search().limit(max(n, 1)).to_arrow()
        texts = table.column("search_text").to_pylist()
        vecs = embed_all(texts, embed, dimension, batch)
        previous = {
            "model_id": self.meta.get("model_id"),
            "dimension": self.meta.get("dimension"),
            "storage_version": self._chunks.version,
        }
        col = pa.FixedSizeListArray.from_arrays(pa.array(vecs.astype(np.float32).ravel()), dimension)
        table = table.set_column(
            table.schema.get_field_index("vector"), pa.field("vector", pa.list_(pa.float32(), dimension)), col
        )
        self._chunks = self._db.create_table("chunks", data=table, mode="overwrite")
        self._ann = None
        self._ensure_indexes()
        self.meta.update(
            model_id=model_id, dimension=dimension, previous=[previous, *self.meta.get("previous", [])][:10]
        )
        self._write_meta()
        self._wrote()
        return len(texts)

    def rollback(self) -> dict[str, Any]:
        """Restore the chunks as they were before the last ``reembed`` (model and vectors). Raises
        StoreError when there is none or its storage version was cleaned up."""
        history = self.meta.get("previous") or []
        if not history or self._chunks is None:
            raise StoreError(f"{self.path}: no earlier embedding model to roll back to")
        prev = history[0]
        try:
            self._chunks.restore(prev["storage_version"])
        except Exception as exc:  # the version was removed by cleanup
            raise StoreError(
                f"storage version {prev['storage_version']} is no longer available ({exc}); re-ingest instead"
            ) from None
        self._ann = None
        self.meta.update(model_id=prev["model_id"], dimension=prev["dimension"], previous=history[1:])
        self._write_meta()
        self._wrote()
        return prev

    def has_ann_index(self) -> bool:
        if self._ann is None and self._chunks is not None:
            self._ann = any("hnsw" in ix.index_type.lower() for ix in self._chunks.list_indices())
        return bool(self._ann)

    # -- reads --------------------------------------------------------------------------------------
    def metadata_kinds(self) -> dict[str, str]:
        """The kind of value each metadata column holds (number, integer, bool, string)."""
        return {name: column_kind(t) for name, t in self._meta_columns().items()}

    def filter_fields(self) -> set[str]:
        return set(BUILTIN_FIELDS) | set(self._meta_columns())

    def _where(self, where: Filter | None, access: Access | None = None) -> str | None:
        """The SQL pre-filter: the caller's access clause AND the user's filter."""
        clauses = []
        if access is not None and not access.everything:
            clauses.append(access_sql(access))
        if where is not None:
            unknown = unknown_fields(where, self.filter_fields(), access)
            clauses.append("(" + to_sql(where, partial(filter_column, unknown=unknown)) + ")")
        return " AND ".join(clauses) or None

    def _hits(self, table: pa.Table, score_col: str, key: str, transform=lambda s: s) -> list[SearchHit]:
        scores = [float(transform(x)) for x in table.column(score_col).to_pylist()]
        chunks = chunks_of(table.drop_columns([score_col]))
        return [
            SearchHit(chunk=c, score=score, rank=rank, scores={key: score})
            for rank, (c, score) in enumerate(zip(chunks, scores), 1)
        ]

    def _read(self, query: Any, where: Filter | None = None) -> pa.Table:
        """Run a query within ``index.query_timeout_s`` (LanceDB cancels it past that).

        Raises QueryTimeoutError past the budget; FilterError when the store cannot evaluate the
        user's filter (its own message is not passed on: it would show the internal SQL)."""
        try:
            return query.to_arrow(timeout=timedelta(seconds=self.settings.query_timeout_s))
        except (RuntimeError, ValueError) as exc:
            if "timeout" in str(exc).lower():
                raise QueryTimeoutError(
                    f"the search ran past its time budget ({self.settings.query_timeout_s:g} s) and was cancelled; "
                    "narrow the filter or try again later"
                ) from None
            if where is not None:
                raise FilterError("filter: the index could not evaluate it; check the fields' value types") from None
            raise

    # The query builders come from LanceQueryBuilder.create, which Table.search calls after reading the
    # table's schema to infer the vector column, even when it is named: a round trip to LanceDB's
    # event loop per search, 0.3 ms p50 and 4 ms p95 on a loaded 2-core machine (bench/query_latency.py).
    def _vector_query(self, vector: np.ndarray, where: Filter | None, access: Access | None) -> Any:
        from lancedb.query import LanceQueryBuilder

        vector = np.asarray(vector, dtype=np.float32)
        q = LanceQueryBuilder.create(self._chunks, vector, "vector", vector_column_name="vector")
        q = q.distance_type("cosine")
        if self.has_ann_index():
            q = q.ef(self.settings.hnsw_ef_search)
            if self.settings.refine_factor:
                q = q.refine_factor(self.settings.refine_factor)
        sql = self._where(where, access)
        return q.where(sql, prefilter=True) if sql else q

    def _keyword_query(self, query: str, where: Filter | None, access: Access | None) -> Any:
        from lancedb.query import LanceQueryBuilder

        q = LanceQueryBuilder.create(self._chunks, query, "fts", vector_column_name=None, fts_columns="search_text")
        sql = self._where(where, access)
        return q.where(sql, prefilter=True) if sql else q

    def vector_search(
        self, vector: np.ndarray, top_k: int, where: Filter | None = None, access: Access | None = None
    ) -> list[SearchHit]:
        if self._chunks is None:
            return []
        refs = self._direct_ranking(vector, top_k, where, access)
        if refs is not None:
            chunks = self.chunks_at(refs)
            if chunks is not None:  # else a write moved the rows: LanceDB's search below
                return [
                    SearchHit(chunk=c, score=r.score, rank=i, scores={"dense": r.score})
                    for i, (c, r) in enumerate(zip(chunks, refs), 1)
                ]
        q = self._vector_query(vector, where, access)
        table = self._read(q.select([*CHUNK_COLUMNS, "vector", "_distance"]).limit(top_k), where)
        return self._hits(table, "_distance", "dense", similarity)

    def keyword_search(
        self, query: str, top_k: int, where: Filter | None = None, access: Access | None = None
    ) -> list[SearchHit]:
        if self._chunks is None or not query.strip():
            return []
        q = self._keyword_query(query, where, access)
        table = self._read(q.select([*CHUNK_COLUMNS, "vector", "_score"]).limit(top_k), where)
        return self._hits(table, "_score", "bm25")

    # Late materialisation (RankingStore): a ranking reads the chunk id and the score only, and
    # ``chunks_at`` reads the rows kept. On SciFact a top-100 keyword search that reads every column
    # took 2.6x one that reads the id and score, and a vector search 1.4x (bench/hybrid_latency.py).
    def vector_ranking(
        self, vector: np.ndarray, top_k: int, where: Filter | None = None, access: Access | None = None
    ) -> list[RankedRef]:
        if self._chunks is None:
            return []
        refs = self._direct_ranking(vector, top_k, where, access)
        if refs is not None:
            return refs
        q = self._vector_query(vector, where, access)
        table = self._read(q.select(["chunk_id", "_distance"]).with_row_id(True).limit(top_k), where)
        return ranked(table, "_distance", similarity)

    def _direct_ranking(
        self, vector: np.ndarray, top_k: int, where: Filter | None, access: Access | None
    ) -> list[RankedRef] | None:
        """The vector ranking without LanceDB's query layer (index/lance_reads.py): exact from memory
        below the ANN bound; the HNSW index through pylance for a search with no pre-filter (bounded
        by ef: nothing to cancel). None: LanceDB's query, with its time budget, does it."""
        flat = self._flat_dataset()
        if flat is not None:
            return self._flat_ranking(flat[0], vector, top_k, where, access)
        if self.has_ann_index() and self._where(where, access) is None:
            s = self.settings
            return ann_ranking(self._dataset(), vector, top_k, s.hnsw_ef_search, s.refine_factor)
        return None

    def _flat_dataset(self, ds: Any = None) -> tuple[Any, int] | None:
        """(pylance dataset, its row count) when vector search is exact from memory (``TableCopy``):
        ``index.flat_in_memory`` on, no ANN index, at most ``index.ann_min_rows`` rows (the bound on
        the copy's memory, whoever grew the table). ``ds``: the dataset already read, if any."""
        if not self.settings.flat_in_memory or self.has_ann_index():
            return None
        ds = ds if ds is not None else self._dataset()
        rows = ds.count_rows()
        return (ds, rows) if rows <= self.settings.ann_min_rows else None

    def _flat_ranking(
        self, ds: Any, vector: np.ndarray, top_k: int, where: Filter | None, access: Access | None
    ) -> list[RankedRef]:
        """Exact search from the in-process copy of ``ds``'s vectors (``TableCopy``). The pre-filter
        (access, user filter) is evaluated by Lance's SQL filter on the same version ``ds``, as the row
        ids it keeps (through pylance: 2.1 ms at 11k chunks against 6.4 through LanceDB's query layer;
        at most ``index.ann_min_rows`` rows are scanned, so no time budget is needed); a row id names
        one immutable row, so a row kept is a row the caller may see. Raises FilterError when Lance
        cannot evaluate the user's filter (its message, which shows the internal SQL, is not passed on)."""
        sql = self._where(where, access)
        if not sql:
            return self._flat.ranking(ds, vector, top_k)
        try:
            allowed = ds.to_table(columns=[], with_row_id=True, filter=sql).column("_rowid").to_numpy()
        except ValueError:
            if where is not None:
                raise FilterError("filter: the index could not evaluate it; check the fields' value types") from None
            raise
        return self._flat.ranking(ds, vector, top_k, np.asarray(allowed, dtype=np.uint64))

    def keyword_ranking(
        self, query: str, top_k: int, where: Filter | None = None, access: Access | None = None
    ) -> list[RankedRef]:
        if self._chunks is None or not query.strip():
            return []
        q = self._keyword_query(query, where, access)
        table = self._read(q.select(["chunk_id", "_score"]).with_row_id(True).limit(top_k), where)
        return ranked(table, "_score", float)

    def chunks_at(self, refs: Sequence[RankedRef]) -> list[Chunk] | None:
        """The rows ``refs`` name, by Lance row id (pylance's take by row id, which leaves out missing
        and deleted rows; ``lance_reads.take_rows``), in ``refs``' order, from the newest version.

        A row id addresses one immutable row of one data fragment (fragment ids are never reused),
        and it came from a search pre-filtered by the caller's access, so the row read is the row
        that search matched; its chunk id is checked all the same. None when a row is missing or
        another chunk's (compaction or a write between the ranking and this read moved it)."""
        if not refs:
            return []
        if self._chunks is None:
            return None
        ds = self._dataset()
        held = self._flat.take(ds, [int(r.ref) for r in refs])
        if held is not None:  # the in-memory copy of this very version (TableCopy)
            table, vectors = held
        elif self._flat.holds(ds):
            return None  # the copy is this version's and lacks a row: written over since the ranking
        else:
            try:
                table = take_rows(ds, [int(r.ref) for r in refs], [*CHUNK_COLUMNS, "vector"])
            except (RuntimeError, ValueError, OSError):  # a fragment removed by compaction since
                return None
            where = {rid: i for i, rid in enumerate(table.column("_rowid").to_pylist())}
            order = [where.get(int(r.ref)) for r in refs]
            if None in order:
                return None
            table, vectors = table.take(order).drop_columns(["_rowid"]), None
        if table.column("chunk_id").to_pylist() != [r.chunk_id for r in refs]:
            return None
        return chunks_of(table, vectors)

    def _scan(self, columns: list[str]) -> pa.Table:
        n = self._chunks.count_rows()
        return self._read(self._chunks.search().select(columns).limit(max(n, 1)))

    def _scan_where(self, columns: list[str], sql: str | None) -> pa.Table:
        n = self._chunks.count_rows()
        q = self._chunks.search().select(columns)
        if sql:
            q = q.where(sql)
        return self._read(q.limit(max(n, 1)))

    def list_documents(self, access: Access | None = None) -> list[DocumentInfo]:
        """Every document the caller may see (all with ``access`` None), sorted by doc id."""
        if self._chunks is None:
            return []
        cols = [
            "doc_id",
            "source",
            "doc_hash",
            "pipeline_hash",
            "title",
            "acl_tenant",
            "acl_groups",
            "ingested_at",
            "text",
        ]
        where = self._where(None, access)
        table = self._scan_where(cols, where)
        docs: dict[str, DocumentInfo] = {}
        for row in table.to_pylist():
            info = docs.get(row["doc_id"])
            if info is None:
                docs[row["doc_id"]] = DocumentInfo(
                    row["doc_id"],
                    row["source"],
                    row["doc_hash"],
                    row["pipeline_hash"],
                    1,
                    row["title"] or "",
                    row["acl_tenant"],
                    list(groups_tuple(row["acl_groups"])),
                    row["ingested_at"] or "",
                    len(row["text"] or ""),
                )
            else:
                info.chunks += 1
                info.chars += len(row["text"] or "")
        # The parsing report, from each document's first chunk only (the metadata JSON of every chunk is
        # not read).
        first = self._scan_where(["doc_id", "metadata"], f"({where}) AND position = 0" if where else "position = 0")
        for row in first.to_pylist():
            if row["doc_id"] in docs:
                docs[row["doc_id"]].parse = parse_report(json.loads(row["metadata"] or "{}"))
        return sorted(docs.values(), key=lambda d: d.doc_id)

    def document_chunks(self, doc_id: str, access: Access | None = None) -> list[Chunk]:
        """The chunks of one document in order ([] when it does not exist or the caller may not see it)."""
        if self._chunks is None:
            return []
        sql = " AND ".join(x for x in (f"doc_id = {sql_str(doc_id)}", self._where(None, access)) if x)
        hits = self._hits(with_zero(self._scan_where(CHUNK_COLUMNS, sql)), "_zero", "none")
        return sorted((h.chunk for h in hits), key=lambda c: c.position)

    def chunk_ids(self) -> list[str]:
        return [] if self._chunks is None else self._scan(["chunk_id"]).column("chunk_id").to_pylist()

    def count_chunks(self) -> int:
        return 0 if self._chunks is None else self._chunks.count_rows()

    # -- migration ----------------------------------------------------------------------------------
    def export_rows(self):
        """Every chunk as a plain dict (all stored columns, ``vector`` as float32), for ``migrate``."""
        if self._chunks is None:
            return
        for row in self._scan([*CHUNK_COLUMNS, "ingested_at", "vector"]).to_pylist():
            row["metadata"] = json.loads(row["metadata"] or "{}")
            row["acl_groups"] = list(groups_tuple(row["acl_groups"])) or None
            row["vector"] = np.asarray(row["vector"], dtype=np.float32)
            yield row

    def import_rows(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert exported rows (grouped by chunking settings; the ingest time becomes now)."""
        groups: dict[str, tuple[dict[str, str], list[Chunk]]] = {}
        for r in rows:
            hashes, chunks = groups.setdefault(r["pipeline_hash"] or "", ({}, []))
            hashes[r["doc_id"]] = r["doc_hash"]
            chunks.append(chunk_from_row(r, r["vector"]))
        for pipeline_hash, (hashes, chunks) in groups.items():
            self.replace_documents(hashes, chunks, pipeline_hash)

    def import_versions(self, versions: Sequence[IndexVersion]) -> None:
        if not versions:
            return
        table = pa.Table.from_pylist([v.__dict__ for v in versions], schema=_VERSIONS_SCHEMA)
        if self._versions is None:
            self._versions = self._db.create_table("versions", data=table)
        else:
            self._versions.add(table)
        self._wrote()

    # -- versions -----------------------------------------------------------------------------------
    def record_version(self, added: int, updated: int, deleted: int, changed_doc_ids: Sequence[str]) -> IndexVersion:
        previous = self.list_versions()
        docs = len(pc.unique(self._scan(["doc_id"]).column("doc_id"))) if self._chunks is not None else 0
        v = IndexVersion(
            version=(previous[-1].version + 1) if previous else 1,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            storage_version=self._chunks.version if self._chunks is not None else 0,
            added=added,
            updated=updated,
            deleted=deleted,
            documents=docs,
            chunks=self.count_chunks(),
            changed_doc_ids=list(changed_doc_ids)[:1000],
        )
        row = pa.Table.from_pylist([v.__dict__], schema=_VERSIONS_SCHEMA)
        if self._versions is None:
            self._versions = self._db.create_table("versions", data=row, exist_ok=False)
        else:
            self._versions.add(row)
        self._wrote()
        return v

    def current_version(self) -> int | None:
        """The latest index version number (versions are numbered 1, 2, ... with no gaps), or None."""
        # pylance's count: ~0.01 ms against ~0.3 through LanceDB's query layer, on every cached search
        return self._dataset("versions").count_rows() if self._versions is not None else None

    def list_versions(self) -> list[IndexVersion]:
        if self._versions is None:
            return []
        rows = self._versions.to_arrow().to_pylist()
        return sorted((IndexVersion(**r) for r in rows), key=lambda v: v.version)

    # -- one writer at a time, and consistency checks -----------------------------------------------
    @contextmanager
    def writing(self, operation: str = "write", on_wait: WaitFn | None = None) -> Iterator[None]:
        """The Store's writer lock: ``filelock.FileLock`` (flock(2)) on ``writer.lock`` in the kb folder.
        In an object store (``index.lance_uri``) no lock is possible: a single writer is assumed and
        this does nothing. Raises StoreError on timeout (``index.writer_timeout_s``) or when the lock
        file cannot be created."""
        if self.remote or getattr(self._writer, "depth", 0):
            self._writer.depth = getattr(self._writer, "depth", 0) + 1
            try:
                yield
            finally:
                self._writer.depth -= 1
            return
        lock = self._acquire_writer_lock(operation, on_wait)
        try:
            self._write_holder(operation)
            self._refresh()
            self._writer.depth = 1
            yield
        finally:
            self._writer.depth = 0
            self._wrote()
            (self.path / "writer.json").unlink(missing_ok=True)  # before the release: never the next holder's
            lock.release()

    def _acquire_writer_lock(self, operation: str, on_wait: WaitFn | None):
        from filelock import FileLock, Timeout

        path = self.path / "writer.lock"
        timeout = self.settings.writer_timeout_s
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            lock = FileLock(path)
            try:
                lock.acquire(blocking=False)
            except Timeout:
                if timeout == 0:
                    raise
                announce_wait(on_wait, *self._holder())
                lock.acquire(timeout=-1 if timeout is None else timeout)
        except Timeout:
            holder = self._holder()[0]
            raise StoreError(
                f"{self.path}: another writer ({holder}) still holds the writer lock after {timeout:g} s "
                "(index.writer_timeout_s); let it finish, or raise the timeout"
            ) from None
        except OSError as exc:
            raise StoreError(
                f"cannot take the writer lock {path} ({exc.strerror or exc}); check the folder's permissions"
            ) from None
        return lock

    def _write_holder(self, operation: str) -> None:
        info = {
            "operation": operation,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        tmp = self.path / "writer.json.tmp"
        tmp.write_text(json.dumps(info))
        os.replace(tmp, self.path / "writer.json")  # a waiting writer never reads half of it

    def _holder(self) -> tuple[str, str]:
        """(operation, details) of the writer holding the lock, from its ``writer.json`` (read as
        untrusted: at most 4 KiB, plain values only); ("unknown", "") when unreadable."""
        try:
            with open(self.path / "writer.json", "rb") as f:
                info = json.loads(f.read(4096))
        except (OSError, ValueError):
            return "unknown", ""
        if not isinstance(info, dict):
            return "unknown", ""
        op, pid, host, since = (plain(info.get(k)) for k in ("operation", "pid", "host", "since"))
        return op, f"pid {pid} on {host} since {since}"

    def _refresh(self) -> None:
        """Re-read what other processes wrote: a LanceDB table handle keeps the version it opened,
        and meta.json or a table may have been created since this store was opened."""
        self.meta = self._read_meta()
        self._chunks = self._open("chunks")
        self._versions = self._open("versions")
        self._ann = None

    def stored_rows(self) -> pa.Table:
        """Every row, ``ref`` = LanceDB's ``_rowid``: one scan of five narrow columns."""
        if self._chunks is None:
            return pa.table({c: pa.array([], pa.int64() if c == "ref" else pa.string()) for c in ROW_COLUMNS})
        table = self._scan([*ROW_COLUMNS[1:], "_rowid"])
        ref = table.column("_rowid").cast(pa.int64())
        return table.drop_columns(["_rowid"]).add_column(0, "ref", ref).select(list(ROW_COLUMNS))

    def drop_rows(self, refs: Sequence[Any]) -> int:
        """Delete rows by LanceDB row id, in one commit. The ids are those of ``stored_rows`` read
        under the same writer lock (compaction renumbers rows, and only writers compact)."""
        if not refs or self._chunks is None:
            return 0
        before = self._chunks.count_rows()
        self._chunks.delete(f"_rowid IN ({', '.join(str(int(r)) for r in refs)})")
        self._wrote()
        return before - self._chunks.count_rows()

    def recount_statistics(self, apply: bool = False) -> list[StatisticMismatch]:
        """None to recount: LanceDB keeps its full-text index's statistics itself."""
        return []


_VERSIONS_SCHEMA = pa.schema(
    [
        ("version", pa.int64()),
        ("created_at", pa.string()),
        ("storage_version", pa.int64()),
        ("added", pa.int64()),
        ("updated", pa.int64()),
        ("deleted", pa.int64()),
        ("documents", pa.int64()),
        ("chunks", pa.int64()),
        ("changed_doc_ids", pa.list_(pa.string())),
    ]
)
