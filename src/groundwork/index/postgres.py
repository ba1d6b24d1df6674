"""The Store protocol on PostgreSQL + pgvector: one store shared by many API replicas.

Selected by ``store = "postgres"`` and ``GROUNDWORK_PG_DSN``. Tables (see ``pg_schema``): ``chunks``
(``embedding vector(dim)``, a generated ``tsv`` column with a GIN index, ``metadata jsonb`` with a
GIN ``jsonb_path_ops`` index, ``acl_tenant`` / ``acl_groups text[]``), ``index_versions``,
``filter_fields``, ``gw_meta``, and the BM25 tables ``lexeme_df``, ``corpus_stats``, ``chunk_rows``,
``postings``, ``postings_packed``.

- Dense: cosine distance ``<=>``; exact until ``index.ann_min_rows`` chunks, then an HNSW index
  (Malkov & Yashunin 2018; pgvector's, with ``index.hnsw_m``, ``hnsw_ef_construction``,
  ``hnsw_ef_search``). pgvector filters HNSW results after the index scan, so a selective filter can
  leave fewer than top_k rows; then the query is re-run as an exact scan over the filtered rows, which
  keeps the store contract (a filtered search returns top_k rows whenever that many match).
- Keyword: BM25 (Robertson & Zaragoza 2009; k1 = 1.2, b = 0.75, idf = ln(1 + (N - df + 0.5) /
  (df + 0.5)), as LanceDB's) over PostgreSQL's text-search lexemes, the exact top-k summed in NumPy
  from each query lexeme's packed postings list plus the postings written since the pack
  (``pg_packed``), or with MaxScore early termination in SQL (``pg_bm25``) while many chunks were
  written since: term frequencies and chunk lengths in ``postings`` and the stored ``tsvector``,
  document frequencies in ``lexeme_df``, N / average length in ``corpus_stats``, all kept exact by
  every write (in its transaction); ``optimize`` packs the lists again (``pack_postings``).
- Writes: ``replace_documents`` deletes and inserts (``COPY ... BINARY``) a batch's documents in one
  transaction; readers see the batch all or nothing.
- One writer at a time (``writing``): a session-level advisory lock, keyed by the schema, held on one
  pooled connection for a whole ingest run (or delete, reindex, rollback, repair), so the runs of
  several replicas serialise. The server drops it when that session ends, so a crashed writer never
  leaves it held.
"""

from __future__ import annotations

import json
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa

from groundwork.config import IndexSettings, redact_dsn
from groundwork.errors import ConfigError, FilterError, QueryTimeoutError, StoreError
from groundwork.filters import Filter
from groundwork.index import pg_packed, pg_upkeep
from groundwork.index.pg_filter import compile_filter
from groundwork.index.pg_schema import check_identifier, make_pool, migrate
from groundwork.index.rows import (
    check_access_names,
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

_COLS = (
    "chunk_id, doc_id, source, position, text, title, heading, page, content_hash, parent_id, parent_text, "
    "metadata, acl_tenant, acl_groups, context, embedding"
)
_COPY_COLS = (
    "chunk_id",
    "doc_id",
    "source",
    "position",
    "text",
    "search_text",
    "title",
    "heading",
    "page",
    "content_hash",
    "doc_hash",
    "pipeline_hash",
    "parent_id",
    "parent_text",
    "metadata",
    "ingested_at",
    "embedding",
    "acl_tenant",
    "acl_groups",
    "context",
)
_COPY_TYPES = [
    "text",
    "text",
    "text",
    "int4",
    "text",
    "text",
    "text",
    "text",
    "int4",
    "text",
    "text",
    "text",
    "text",
    "text",
    "jsonb",
    "text",
    "vector",
    "text",
    "text[]",
    "text",
]
_ROW_KEYS = [c.strip() for c in _COLS.split(",")][:-1]  # the columns of _COLS before the embedding
# The writer lock of a whole run: a two-int4 advisory key (its own key space: no clash with
# pg_upkeep.WRITE_LOCK,
# taken inside the run), (this class, the schema's CRC-32), so knowledge bases in other schemas don't wait.
_RUN_LOCK_CLASS = 0x67776C6B
_APP_PREFIX = "groundwork writer: "


class PgStore:
    """Chunks in PostgreSQL, on a connection pool whose schema is migrated (see ``connect``).

    Args:
        pool: a psycopg_pool.ConnectionPool from ``pg_schema.make_pool`` (search_path set, vector type known).
        dimension: the embedding model's vector size (the ``vector(dim)`` column's).
        schema: the PostgreSQL schema holding the tables. fts_language: a text-search configuration.
        dsn: the connection string, only to name the store in messages (never shown with its password).
    Raises:
        StoreError: an invalid schema or language name.
    """

    def __init__(
        self,
        pool: Any,
        dimension: int,
        settings: IndexSettings | None = None,
        schema: str = "groundwork",
        fts_language: str = "english",
        dsn: str = "",
    ) -> None:
        self.pool, self.dsn, self.dimension = pool, dsn, dimension
        self.settings = settings or IndexSettings()
        self.schema = check_identifier(schema, "postgres.schema_name")
        self.fts_language = check_identifier(fts_language.lower(), "postgres.fts_language")
        self.bm25_ranker: Callable[..., list] = pg_packed.top_k  # benchmarks swap in pg_bm25's
        self._owns_pool = False
        self._ann: bool | None = None
        self._ann_checked = 0.0
        self._tsv_language: str | None = None
        self._writer = threading.local()  # this thread's writer-lock depth (see writing())

    @classmethod
    def connect(
        cls,
        dsn: str,
        dimension: int,
        settings: IndexSettings | None = None,
        schema: str = "groundwork",
        fts_language: str = "english",
        pool_size: int = 8,
        auto_migrate: bool = True,
    ) -> PgStore:
        """A store with a pool of its own (closed by ``close``); missing migrations applied first
        unless ``auto_migrate`` is off. Raises StoreError: unreachable server, missing pgvector, or a
        schema made for another dimension."""
        check_identifier(schema, "postgres.schema_name")
        if auto_migrate:
            migrate(dsn, schema, dimension, fts_language)
        store = cls(make_pool(dsn, schema, 1, pool_size), dimension, settings, schema, fts_language, dsn)
        store._owns_pool = True
        return store

    @property
    def path(self) -> str:
        return f"{redact_dsn(self.dsn)} (schema {self.schema})"

    def close(self) -> None:
        if self._owns_pool:
            self.pool.close()

    def _query(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> list[tuple]:
        with self.pool.connection() as conn:
            return conn.execute(sql, params).fetchall()

    # -- housekeeping -------------------------------------------------------------------------------
    @property
    def exists(self) -> bool:
        return bool(self._query("SELECT 1 FROM gw_meta WHERE key = 'model'"))

    def check_model(self, model_id: str, dimension: int) -> None:
        from psycopg.types.json import Jsonb

        with self.pool.connection() as conn:
            conn.execute(
                "INSERT INTO gw_meta VALUES ('model', %s) ON CONFLICT DO NOTHING",
                (
                    Jsonb(
                        {
                            "model_id": model_id,
                            "dimension": dimension,
                            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                        }
                    ),
                ),
            )
            meta = conn.execute("SELECT value FROM gw_meta WHERE key = 'model'").fetchone()[0]
        check_same_model(f"in {self.path}", meta, model_id, dimension, "use another postgres.schema_name")

    def record_options(self) -> dict[str, dict[str, Any]]:
        """Records files -> the options (text_field, id_field, metadata_fields) they were ingested with."""
        rows = self._query("SELECT value FROM gw_meta WHERE key = 'record_options'")
        return dict(rows[0][0]) if rows else {}

    def save_record_options(self, source: str, options: dict[str, Any]) -> None:
        from psycopg.types.json import Jsonb

        with self.pool.connection() as conn:  # one statement: replicas never lose each other's entries
            conn.execute(
                "INSERT INTO gw_meta VALUES ('record_options', %s) ON CONFLICT (key) "
                "DO UPDATE SET value = gw_meta.value || EXCLUDED.value",
                (Jsonb({source: options}),),
            )

    def model_info(self) -> dict[str, Any] | None:
        """The recorded embedding model: {"model_id", "dimension"}, or None before the first write."""
        rows = self._query("SELECT value FROM gw_meta WHERE key = 'model'")
        return {"model_id": rows[0][0]["model_id"], "dimension": rows[0][0]["dimension"]} if rows else None

    def _language(self, conn) -> str:
        """The full-text configuration the ``tsv`` column was created with (recorded by migration 1;
        it may differ from ``fts_language`` when the store was opened without migrating)."""
        if self._tsv_language is None:
            row = conn.execute("SELECT value->>'fts_language' FROM gw_meta WHERE key = 'schema'").fetchone()
            self._tsv_language = check_identifier(row[0] if row and row[0] else self.fts_language, "fts_language")
        return self._tsv_language

    # -- writes -------------------------------------------------------------------------------------
    def replace_documents(self, doc_hashes: Mapping[str, str], chunks: Sequence[Chunk], pipeline_hash: str) -> None:
        doc_ids = list(doc_hashes)
        if not doc_ids:
            return
        now = datetime.now(UTC).isoformat(timespec="seconds")
        new_fields = sorted({k for c in chunks for k, v in c.metadata.items() if v is not None})
        with self.pool.connection() as conn, conn.transaction():
            pg_upkeep.lock_writes(conn)
            pg_upkeep.update_stats(conn, doc_ids, -1)
            conn.execute("DELETE FROM chunks WHERE doc_id = ANY(%s)", (doc_ids,))
            with pg_upkeep.staged_copy(conn, self._language(conn), _COPY_COLS) as copy:
                copy.set_types(_COPY_TYPES)
                for c in chunks:
                    copy.write_row(
                        (
                            c.chunk_id,
                            c.doc_id,
                            c.source,
                            c.position,
                            c.text,
                            c.search_text,
                            c.title,
                            heading_value(c.heading_path),
                            c.page,
                            c.content_hash,
                            doc_hashes[c.doc_id],
                            pipeline_hash,
                            c.parent_id,
                            c.parent_text,
                            json.loads(json.dumps(c.metadata, default=str)),
                            now,  # JSON-native values only
                            np.asarray(c.vector, dtype=np.float32),
                            c.tenant,
                            sorted(set(c.allowed_groups)) or None,
                            c.context,
                        )
                    )
            pg_upkeep.update_stats(conn, doc_ids, +1)
            if new_fields:
                conn.execute(
                    "INSERT INTO filter_fields SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING", (new_fields,)
                )

    def delete_documents(self, doc_ids: Sequence[str]) -> int:
        if not doc_ids:
            return 0
        with self.pool.connection() as conn, conn.transaction():
            pg_upkeep.lock_writes(conn)
            pg_upkeep.update_stats(conn, list(doc_ids), -1)
            return conn.execute("DELETE FROM chunks WHERE doc_id = ANY(%s)", (list(doc_ids),)).rowcount

    def optimize(self) -> None:
        """Build the HNSW index once the table reaches ``index.ann_min_rows`` chunks, then ANALYZE."""
        n = self.count_chunks()
        with self.pool.connection() as conn:
            conn.autocommit = True
            try:
                if n >= self.settings.ann_min_rows and not self.has_ann_index():
                    kb = conn.execute("SELECT setting::bigint FROM pg_settings WHERE name = 'maintenance_work_mem'")
                    if kb.fetchone()[0] < 1 << 20:  # kB: at least 1 GB for the graph; a larger server setting stays
                        conn.execute("SET maintenance_work_mem = '1GB'")
                    conn.execute(
                        f"CREATE INDEX IF NOT EXISTS chunks_embedding_hnsw ON chunks USING hnsw (embedding vector_cosine_ops) "
                        f"WITH (m = {int(self.settings.hnsw_m)}, ef_construction = {int(self.settings.hnsw_ef_construction)})"
                    )
                    self._ann = None
                conn.execute("ANALYZE chunks")
                conn.execute("VACUUM (ANALYZE) postings")  # sets the visibility map: index-only scans in pg_bm25
            finally:
                conn.autocommit = False
        with self.pool.connection() as conn:
            _, changed, n = pg_packed.state(conn)  # chunks written or deleted since the last pack
        if changed > max(pg_packed.PACK_FLOOR, n // 10):
            self.pack_postings()

    def pack_postings(self) -> int:
        """Rebuild the packed postings lists (``pg_packed``) under the writers' lock; returns the last
        row number they hold. O(postings): 4-5 s at 100k chunks on 2 cores, writers wait meanwhile."""
        with self.pool.connection() as conn, conn.transaction():
            # READ COMMITTED whatever the server's default: the lists must be read after the lock is
            # held (a snapshot taken before it would miss a write that committed while it waited).
            conn.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
            pg_upkeep.lock_writes(conn)
            return pg_packed.pack(conn)

    def has_ann_index(self) -> bool:
        # Another replica may build the index: the answer is re-read at most once a minute.
        if self._ann is None or time.monotonic() - self._ann_checked > 60:
            self._ann_checked = time.monotonic()
            self._ann = bool(
                self._query(
                    "SELECT 1 FROM pg_indexes WHERE schemaname = %s AND indexname = 'chunks_embedding_hnsw'",
                    (self.schema,),
                )
            )
        return self._ann

    def reembed(self, model_id: str, dimension: int, embed: Callable[[list[str]], np.ndarray], batch: int = 256) -> int:
        """Give every chunk a vector from another model of the same dimension, in one transaction;
        the previous vectors are kept in ``chunks_previous`` for ``rollback``. Raises StoreError for
        another dimension (the column type is fixed: use another postgres.schema_name)."""
        if dimension != self.dimension:
            raise StoreError(
                f"{self.path} holds {self.dimension}-d vectors; a {dimension}-d model needs another postgres.schema_name"
            )
        rows = self._query("SELECT chunk_id, search_text FROM chunks ORDER BY chunk_id")
        texts = [r[1] for r in rows]
        vecs = embed_all(texts, embed, dimension, batch)
        from psycopg.types.json import Jsonb

        with self.pool.connection() as conn, conn.transaction():
            prev = conn.execute("SELECT value FROM gw_meta WHERE key = 'model'").fetchone()[0]
            conn.execute("DELETE FROM chunks_previous")
            conn.execute("INSERT INTO chunks_previous SELECT chunk_id, embedding FROM chunks")
            conn.execute("CREATE TEMP TABLE new_vectors (chunk_id TEXT, embedding vector) ON COMMIT DROP")
            with conn.cursor().copy("COPY new_vectors FROM STDIN WITH (FORMAT BINARY)") as copy:
                copy.set_types(["text", "vector"])
                for (cid, _), v in zip(rows, vecs):
                    copy.write_row((cid, np.asarray(v, np.float32)))
            conn.execute("UPDATE chunks c SET embedding = n.embedding FROM new_vectors n WHERE c.chunk_id = n.chunk_id")
            model = {
                **prev,
                "model_id": model_id,
                "dimension": dimension,
                "previous": [{k: prev[k] for k in ("model_id", "dimension")}],
            }
            conn.execute("UPDATE gw_meta SET value = %s WHERE key = 'model'", (Jsonb(model),))
        return len(rows)

    def rollback(self) -> dict[str, Any]:
        """Restore the vectors and model from before the last ``reembed``. Raises StoreError when none."""
        from psycopg.types.json import Jsonb

        with self.pool.connection() as conn, conn.transaction():
            model = conn.execute("SELECT value FROM gw_meta WHERE key = 'model'").fetchone()
            history = (model[0] if model else {}).get("previous") or []
            if not history:
                raise StoreError(f"{self.path}: no earlier embedding model to roll back to")
            conn.execute(
                "UPDATE chunks c SET embedding = p.embedding FROM chunks_previous p WHERE c.chunk_id = p.chunk_id"
            )
            conn.execute("DELETE FROM chunks_previous")
            restored = {**model[0], **history[0], "previous": []}
            conn.execute("UPDATE gw_meta SET value = %s WHERE key = 'model'", (Jsonb(restored),))
        return history[0]

    # -- reads --------------------------------------------------------------------------------------
    def metadata_kinds(self) -> None:
        """None: metadata is jsonb, which holds any kind of value per document."""
        return None

    def filter_fields(self) -> set[str]:
        return set(BUILTIN_FIELDS) | {r[0] for r in self._query("SELECT field FROM filter_fields")}

    def _where(self, where: Filter | None, access: Access | None) -> tuple[str, list[Any]]:
        """The pre-filter: the caller's access clause AND the user's filter, as (SQL, parameters)."""
        clauses: list[str] = []
        params: list[Any] = []
        if access is not None and not access.everything:
            check_access_names(access)
            if access.tenant is None:
                clauses.append("acl_tenant IS NULL")
            else:
                clauses.append("acl_tenant = %s")
                params.append(access.tenant)
            clauses.append("(acl_groups IS NULL OR acl_groups && %s::text[])")
            params.append(list(access.groups))
        if where is not None:
            unknown_fields(where, self.filter_fields(), access)  # jsonb: a field nobody has is NULL anyway
            clauses.append(compile_filter(where, params))
        return (" AND ".join(clauses) or "TRUE"), params

    @contextmanager
    def _reading(self, isolation: str = "") -> Iterator[Any]:
        """A connection in a read transaction with ``statement_timeout`` = ``index.query_timeout_s``;
        ``isolation`` (e.g. "REPEATABLE READ") when the reads must share one snapshot. Raises
        QueryTimeoutError when the server cancels a statement past the budget, FilterError when a
        filter value does not fit its field's type."""
        import psycopg

        budget_ms = max(1, int(self.settings.query_timeout_s * 1000))  # 0 would mean no limit at all
        with self.pool.connection() as conn, conn.transaction():
            if isolation:
                conn.execute(f"SET TRANSACTION ISOLATION LEVEL {isolation}, READ ONLY")
            conn.execute(f"SET LOCAL statement_timeout = {budget_ms}")  # the server cancels the query past it
            try:
                yield conn
            except psycopg.errors.QueryCanceled:
                raise QueryTimeoutError(
                    f"the search ran past its time budget ({self.settings.query_timeout_s:g} s) and was cancelled; "
                    "narrow the filter or try again later"
                ) from None
            except (psycopg.errors.DataError, psycopg.errors.UndefinedFunction):
                raise FilterError("filter: a value does not fit its field's type; check the value types") from None

    def _run_search(self, sql: str, params: list[Any], settings: Sequence[str] = ()) -> list[tuple]:
        with self._reading() as conn:
            for s in settings:
                conn.execute(s)
            return conn.execute(sql, params).fetchall()

    def vector_search(
        self, vector: np.ndarray, top_k: int, where: Filter | None = None, access: Access | None = None
    ) -> list[SearchHit]:
        rows, _ = self._vector_rows(_COLS, vector, top_k, where, access)
        return _hits(rows, "dense", lambda d: 1.0 - d)

    def vector_ranking(
        self, vector: np.ndarray, top_k: int, where: Filter | None = None, access: Access | None = None
    ) -> list[RankedRef]:
        """``vector_search``'s ranking as chunk ids, scores and row numbers (``chunk_rows``, the
        refs ``chunks_at`` reads), without reading the rows."""
        rows, row_nos = self._vector_rows("chunk_id", vector, top_k, where, access, _row_numbers)
        return [RankedRef(r[0], 1.0 - float(r[1]), row_nos.get(r[0], -1)) for r in rows]  # -1: chunks_at refuses

    def _vector_rows(self, cols: str, vector, top_k: int, where, access, then=None) -> tuple[list[tuple], Any]:
        """(rows of ``cols`` + distance, nearest first; ``then(conn, rows)``), in one snapshot."""
        clause, params = self._where(where, access)
        vec = np.asarray(vector, dtype=np.float32)
        sql = (
            f"SELECT {cols}, embedding <=> %s AS distance FROM chunks WHERE {clause} ORDER BY embedding <=> %s LIMIT %s"
        )
        args = [vec, *params, vec, top_k]
        ann = self.has_ann_index()
        ef = f"SET LOCAL hnsw.ef_search = {max(int(self.settings.hnsw_ef_search), top_k)}"
        with self._reading("REPEATABLE READ") as conn:
            conn.execute(ef if ann else "SET LOCAL enable_indexscan = off")
            rows = conn.execute(sql, args).fetchall()
            if ann and len(rows) < top_k and clause != "TRUE":
                # The HNSW scan dropped rows the filter rejects; the filtered rows are few, so scan them exactly.
                conn.execute("SET LOCAL enable_indexscan = off")
                rows = conn.execute(sql, args).fetchall()
            return rows, (then(conn, rows) if then else None)

    def keyword_search(
        self, query: str, top_k: int, where: Filter | None = None, access: Access | None = None
    ) -> list[SearchHit]:
        """BM25 top_k, exact: packed postings lists summed in NumPy (``pg_packed``), or MaxScore
        early termination in SQL (``pg_bm25``) while many chunks were written since the last pack."""
        return self._keyword(query, top_k, where, access, self.bm25_ranker)

    def keyword_ranking(
        self, query: str, top_k: int, where: Filter | None = None, access: Access | None = None
    ) -> list[RankedRef]:
        """``keyword_search``'s ranking as chunk ids, scores and row numbers, without reading the rows."""
        ranked, row_nos = self._keyword_ranked(query, top_k, where, access, self.bm25_ranker, _row_numbers)
        return [RankedRef(i, score, row_nos.get(i, -1)) for i, score in ranked]

    def chunks_at(self, refs: Sequence[RankedRef]) -> list[Chunk] | None:
        """The chunks of ``refs`` (from ``vector_ranking`` / ``keyword_ranking``), in their order; None
        when one was deleted or written again since (a new write gives a chunk a new row number)."""
        if not refs:
            return []
        with self._reading() as conn:
            sql = f"SELECT r.row_no, {_COLS} FROM chunk_rows r JOIN chunks USING (chunk_id) WHERE r.row_no = ANY(%s)"
            rows = {r[0]: r[1:] for r in conn.execute(sql, [[int(x.ref) for x in refs]])}
        if any(x.ref not in rows or rows[x.ref][0] != x.chunk_id for x in refs):
            return None
        n = len(_ROW_KEYS)
        return [
            chunk_from_row(dict(zip(_ROW_KEYS, rows[x.ref][:n], strict=True)), _array(rows[x.ref][n])) for x in refs
        ]

    def _keyword(self, query: str, top_k: int, where, access, ranker: Callable[..., list]) -> list[SearchHit]:
        ranked, rows = self._keyword_ranked(query, top_k, where, access, ranker, _rows_of)
        return _hits([(*rows[i], score) for i, score in ranked], "bm25")

    def _keyword_ranked(self, query: str, top_k: int, where, access, ranker, then) -> tuple[list, Any]:
        """(``ranker``'s (chunk_id, score) list, ``then(conn, ranked)``), in one snapshot."""
        if not query.strip():
            return [], {}
        clause, params = self._where(where, access)
        with self._reading("REPEATABLE READ") as conn:
            ranked = ranker(conn, self.fts_language, query, top_k, clause, params, self.settings.query_timeout_s)
            return ranked, (then(conn, ranked) if ranked else {})

    def list_documents(self, access: Access | None = None) -> list[DocumentInfo]:
        """Every document the caller may see (all with ``access`` None), sorted by doc id."""
        clause, params = self._where(None, access)
        rows = self._run_search(
            "SELECT doc_id, min(source), min(doc_hash), min(pipeline_hash), count(*), min(title), min(acl_tenant), "
            f"min(array_to_string(acl_groups, '|')), min(ingested_at), sum(length(text)), "
            # the parsing report: the parse_* fields of the first chunk's metadata
            "(array_agg(metadata) FILTER (WHERE position = 0))[1] "
            f"FROM chunks WHERE {clause} "
            "GROUP BY doc_id ORDER BY doc_id",
            params,
        )
        return [
            DocumentInfo(
                r[0],
                r[1],
                r[2],
                r[3],
                int(r[4]),
                r[5] or "",
                r[6],
                [g for g in (r[7] or "").split("|") if g],
                r[8] or "",
                int(r[9] or 0),
                parse_report(r[10] or {}),
            )
            for r in rows
        ]

    def document_chunks(self, doc_id: str, access: Access | None = None) -> list[Chunk]:
        clause, params = self._where(None, access)
        rows = self._run_search(
            f"SELECT {_COLS}, 0 FROM chunks WHERE doc_id = %s AND {clause} ORDER BY position", [doc_id, *params]
        )
        return [h.chunk for h in _hits(rows, "none")]

    def chunk_ids(self) -> list[str]:
        return [r[0] for r in self._query("SELECT chunk_id FROM chunks")]

    def count_chunks(self) -> int:
        return int(self._query("SELECT count(*) FROM chunks")[0][0])

    # -- migration ----------------------------------------------------------------------------------
    def export_rows(self):
        """Every chunk as a plain dict (all stored columns, ``vector`` as float32), for ``migrate``."""
        cols = [c for c in _COPY_COLS if c != "search_text"]
        with self.pool.connection() as conn:
            for r in conn.cursor(name="export").execute(f"SELECT {', '.join(cols)} FROM chunks"):
                row = dict(zip(cols, r))
                row["vector"] = _array(row.pop("embedding"))
                yield row

    def import_rows(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert exported rows as they are (ingest time and hashes kept), in one transaction."""
        new_fields = sorted({k for r in rows for k, v in (r["metadata"] or {}).items() if v is not None})
        doc_ids = sorted({r["doc_id"] for r in rows})
        with self.pool.connection() as conn, conn.transaction():
            pg_upkeep.lock_writes(conn)
            with pg_upkeep.staged_copy(conn, self._language(conn), _COPY_COLS) as copy:
                copy.set_types(_COPY_TYPES)
                for r in rows:
                    search_text = chunk_from_row(r).search_text
                    copy.write_row(
                        tuple(
                            search_text
                            if c == "search_text"
                            else np.asarray(r["vector"], np.float32)
                            if c == "embedding"
                            else (r[c] or None)
                            if c == "acl_groups"
                            else r[c]
                            for c in _COPY_COLS
                        )
                    )
            pg_upkeep.update_stats(conn, doc_ids, +1)
            if new_fields:
                conn.execute(
                    "INSERT INTO filter_fields SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING", (new_fields,)
                )

    def import_versions(self, versions: Sequence[IndexVersion]) -> None:
        with self.pool.connection() as conn, conn.transaction():
            for v in versions:
                conn.execute(
                    "INSERT INTO index_versions VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (
                        v.version,
                        v.created_at,
                        v.storage_version,
                        v.added,
                        v.updated,
                        v.deleted,
                        v.documents,
                        v.chunks,
                        list(v.changed_doc_ids),
                    ),
                )

    # -- versions -----------------------------------------------------------------------------------
    def record_version(self, added: int, updated: int, deleted: int, changed_doc_ids: Sequence[str]) -> IndexVersion:
        with self.pool.connection() as conn, conn.transaction():
            conn.execute("LOCK TABLE index_versions IN EXCLUSIVE MODE")  # numbers stay gapless across replicas
            last = conn.execute("SELECT coalesce(max(version), 0) FROM index_versions").fetchone()[0]
            docs, chunks = conn.execute("SELECT count(DISTINCT doc_id), count(*) FROM chunks").fetchone()
            v = IndexVersion(
                version=last + 1,
                created_at=datetime.now(UTC).isoformat(timespec="seconds"),
                storage_version=last + 1,
                added=added,
                updated=updated,
                deleted=deleted,
                documents=docs,
                chunks=chunks,
                changed_doc_ids=list(changed_doc_ids)[:1000],
            )
            conn.execute(
                "INSERT INTO index_versions VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    v.version,
                    v.created_at,
                    v.storage_version,
                    v.added,
                    v.updated,
                    v.deleted,
                    v.documents,
                    v.chunks,
                    v.changed_doc_ids,
                ),
            )
        return v

    def current_version(self) -> int | None:
        return self._query("SELECT max(version) FROM index_versions")[0][0]

    def list_versions(self) -> list[IndexVersion]:
        rows = self._query(
            "SELECT version, created_at, storage_version, added, updated, deleted, documents, chunks, changed_doc_ids "
            "FROM index_versions ORDER BY version"
        )
        return [IndexVersion(*r[:8], changed_doc_ids=list(r[8])) for r in rows]

    # -- one writer at a time, and consistency checks -----------------------------------------------
    @contextmanager
    def writing(self, operation: str = "write", on_wait: WaitFn | None = None) -> Iterator[None]:
        """The Store's writer lock: ``pg_advisory_lock`` at session level on one pooled connection,
        held (idle, in autocommit) until the block ends; the connection's ``application_name`` names
        the operation for waiting writers. Raises StoreError on timeout (``index.writer_timeout_s``,
        as ``lock_timeout``) or a lost connection; ConfigError when ``postgres.pool_size`` < 2 (the
        lock's connection would leave none for the writes)."""
        local = self._writer
        if getattr(local, "depth", 0):
            local.depth += 1
            try:
                yield
            finally:
                local.depth -= 1
            return
        if self.pool.max_size < 2:
            raise ConfigError("postgres.pool_size must be at least 2: a writer holds one connection for its lock")
        with self.pool.connection() as conn:
            conn.autocommit = True  # an idle lock holder, never a transaction left open for the whole run
            try:
                self._lock_run(conn, operation, on_wait)
            except BaseException:
                self._unlock_run(conn)  # a wait cancelled by Ctrl-C may have been granted just before
                raise
            local.depth = 1
            try:
                yield
            finally:
                local.depth = 0
                self._unlock_run(conn)

    def _run_key(self) -> tuple[int, int]:
        crc = zlib.crc32(self.schema.encode())
        return _RUN_LOCK_CLASS, crc - (1 << 32) if crc >= 1 << 31 else crc  # int4 is signed

    def _lock_run(self, conn, operation: str, on_wait: WaitFn | None) -> None:
        import psycopg

        key = self._run_key()
        timeout = self.settings.writer_timeout_s
        try:
            got = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", key).fetchone()[0]
            if not got and timeout != 0:
                announce_wait(on_wait, *self._run_holder(conn, key))
                # lock_timeout bounds the wait; 0 means none (at least 1 ms when a timeout is set).
                ms = 0 if timeout is None else max(1, int(timeout * 1000))
                conn.execute("SELECT set_config('lock_timeout', %s, false)", (f"{ms}ms",))
                try:
                    conn.execute("SELECT pg_advisory_lock(%s, %s)", key)
                    got = True
                except psycopg.errors.LockNotAvailable:
                    pass
                finally:
                    conn.execute("RESET lock_timeout")
            if not got:
                raise StoreError(
                    f"{self.path}: another writer ({self._run_holder(conn, key)[0]}) still holds the writer lock "
                    f"after {timeout or 0:g} s (index.writer_timeout_s); let it finish, or raise the timeout"
                )
            conn.execute("SELECT set_config('application_name', %s, false)", (_APP_PREFIX + operation[:40],))
        except psycopg.OperationalError as exc:
            raise StoreError(f"lost the connection to PostgreSQL while taking the writer lock: {exc}") from None

    @staticmethod
    def _run_holder(conn, key: tuple[int, int]) -> tuple[str, str]:
        """(operation, details) of the session holding the writer lock; ("unknown", "") when not
        visible (another database role without pg_read_all_stats sees no application_name)."""
        row = conn.execute(
            "SELECT a.application_name, a.pid, coalesce(host(a.client_addr), 'local') FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
            "AND l.classid = %s::int4::oid AND l.objid = %s::int4::oid AND l.objsubid = 2 LIMIT 1",
            key,
        ).fetchone()
        if row is None or not (row[0] or "").startswith(_APP_PREFIX):
            return "unknown", ""
        return row[0][len(_APP_PREFIX) :], f"PostgreSQL backend pid {row[1]} from {row[2]}"

    def _unlock_run(self, conn) -> None:
        """Release the lock; when that fails the connection is closed, which releases it too (a
        session lock must never go back into the pool held)."""
        try:
            conn.execute("SELECT pg_advisory_unlock(%s, %s)", self._run_key())
            conn.execute("RESET application_name")
            conn.autocommit = False  # as the pool hands connections out
        except Exception:  # any failure: closing the session is the one sure release
            conn.close()

    def stored_rows(self) -> pa.Table:
        """Every row, ``ref`` = the chunk id (the primary key)."""
        rows = self._query("SELECT chunk_id, chunk_id, doc_id, doc_hash, pipeline_hash, ingested_at FROM chunks")
        columns = list(zip(*rows)) or [()] * len(ROW_COLUMNS)
        return pa.table({name: pa.array(values, pa.string()) for name, values in zip(ROW_COLUMNS, columns)})

    def drop_rows(self, refs: Sequence[Any]) -> int:
        """Delete rows by chunk id in one transaction; the BM25 statistics of their documents are
        taken out before and put back after, as every write does."""
        ids = [str(r) for r in refs]
        if not ids:
            return 0
        with self.pool.connection() as conn, conn.transaction():
            pg_upkeep.lock_writes(conn)
            docs = [r[0] for r in conn.execute("SELECT DISTINCT doc_id FROM chunks WHERE chunk_id = ANY(%s)", (ids,))]
            pg_upkeep.update_stats(conn, docs, -1)
            n = conn.execute("DELETE FROM chunks WHERE chunk_id = ANY(%s)", (ids,)).rowcount
            pg_upkeep.update_stats(conn, docs, +1)
        return n

    def recount_statistics(self, apply: bool = False) -> list[StatisticMismatch]:
        """Compare ``corpus_stats`` (n, total_len), each chunk's ``tsv_len``, ``lexeme_df`` and
        ``postings`` with a recount from the stored ``tsvector``s; with ``apply``, write the recount (one transaction,
        under the write lock of ``replace_documents``)."""
        with self.pool.connection() as conn, conn.transaction():
            if apply:
                conn.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")  # as pack_postings
                pg_upkeep.lock_writes(conn)
            found = pg_upkeep.stat_mismatches(conn)
            if apply and found:
                pg_upkeep.write_recount(conn)
        return found


def _row_numbers(conn, ranked: list[tuple]) -> dict[str, int]:
    """chunk id -> row number (``chunk_rows``) of the ranked chunks (first element of each tuple)."""
    sql = "SELECT chunk_id, row_no FROM chunk_rows WHERE chunk_id = ANY(%s)"
    return dict(conn.execute(sql, [[r[0] for r in ranked]]).fetchall())


def _rows_of(conn, ranked: list[tuple]) -> dict[str, tuple]:
    """chunk id -> its ``_COLS`` row, for the ranked chunks."""
    sql = f"SELECT {_COLS} FROM chunks WHERE chunk_id = ANY(%s)"
    return {r[0]: r for r in conn.execute(sql, [[r[0] for r in ranked]])}


def _hits(rows: list[tuple], key: str, transform: Callable[[float], float] = lambda s: s) -> list[SearchHit]:
    hits = []
    for rank, r in enumerate(rows, 1):
        n = len(_ROW_KEYS)
        chunk = chunk_from_row(dict(zip(_ROW_KEYS, r[:n], strict=True)), _array(r[n]))
        score = float(transform(float(r[n + 1])))
        hits.append(SearchHit(chunk=chunk, score=score, rank=rank, scores={key: score}))
    return hits


def _array(value: Any) -> np.ndarray | None:
    return (
        None
        if value is None
        else np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value, dtype=np.float32)
    )
