"""PostgreSQL schema: versioned migrations and the connection pool shared by the store and the service.

Every object lives in one schema (``postgres.schema_name``, default ``groundwork``), so several knowledge
bases can share a database. Migrations are numbered; ``schema_migrations`` records which ran.
``migrate`` applies the missing ones in order, each in its own transaction, under an advisory lock,
so replicas starting together never race (the second waits, then finds nothing to do).

The chunk table's vector dimension and full-text language are fixed when migration 1 runs: they come
from the embedding model and ``postgres.fts_language``, and are recorded in ``gw_meta``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from groundwork.config import Settings, redact_dsn
from groundwork.errors import ConfigError, StoreError
from groundwork.index.pg_packed import PACK_SQL
from groundwork.state.pg_tables import EXPERIMENT_MIGRATIONS, LATER_STATE_MIGRATIONS, STATE_MIGRATIONS

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_LOCK_KEY = 0x67726F756E64  # pg_advisory_xact_lock key: 'ground' in hex


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: Callable[[int, str], str]  # (dimension, fts language) -> SQL


MIGRATIONS: list[Migration] = [  # in version order
    Migration(
        1,
        "chunks, versions, metadata",
        lambda dim, lang: (
            f"""
CREATE TABLE gw_meta (key TEXT PRIMARY KEY, value JSONB NOT NULL);
INSERT INTO gw_meta VALUES ('schema', jsonb_build_object('dimension', {dim}, 'fts_language', '{lang}'));
CREATE TABLE chunks (
    chunk_id TEXT PRIMARY KEY,
    doc_id TEXT NOT NULL,
    source TEXT NOT NULL,
    position INTEGER NOT NULL,
    text TEXT NOT NULL,
    search_text TEXT NOT NULL,
    title TEXT,
    heading TEXT,
    page INTEGER,
    content_hash TEXT,
    doc_hash TEXT,
    pipeline_hash TEXT,
    parent_id TEXT,
    parent_text TEXT,
    metadata JSONB NOT NULL DEFAULT '{{}}',
    ingested_at TEXT,
    embedding vector({dim}) NOT NULL,
    acl_tenant TEXT,
    acl_groups TEXT[],
    tsv tsvector GENERATED ALWAYS AS (to_tsvector('{lang}'::regconfig, search_text)) STORED
);
CREATE INDEX chunks_doc_id ON chunks (doc_id);
CREATE INDEX chunks_source ON chunks (source);
CREATE INDEX chunks_tsv ON chunks USING GIN (tsv);
CREATE INDEX chunks_metadata ON chunks USING GIN (metadata jsonb_path_ops);
CREATE INDEX chunks_acl_tenant ON chunks (acl_tenant);
CREATE INDEX chunks_acl_groups ON chunks USING GIN (acl_groups);
CREATE TABLE filter_fields (field TEXT PRIMARY KEY);
CREATE TABLE index_versions (
    version BIGINT PRIMARY KEY,
    created_at TEXT NOT NULL,
    storage_version BIGINT NOT NULL,
    added BIGINT NOT NULL, updated BIGINT NOT NULL, deleted BIGINT NOT NULL,
    documents BIGINT NOT NULL, chunks BIGINT NOT NULL,
    changed_doc_ids TEXT[] NOT NULL
);
CREATE TABLE chunks_previous (chunk_id TEXT PRIMARY KEY, embedding vector({dim}) NOT NULL);
"""
        ),
    ),
    # The service state's tables (keys, jobs, audit, rate limits) are defined beside their classes.
    *(Migration(v, name, lambda dim, lang, sql=sql: sql) for v, name, sql in STATE_MIGRATIONS),
    Migration(
        3,
        "BM25 statistics: chunk lengths, document frequencies, corpus size",
        lambda dim, lang: (
            """
ALTER TABLE chunks ADD COLUMN tsv_len INTEGER NOT NULL DEFAULT 0;
UPDATE chunks SET tsv_len = (SELECT coalesce(sum(coalesce(array_length(positions, 1), 1)), 0) FROM unnest(tsv));
CREATE TABLE lexeme_df (lexeme TEXT PRIMARY KEY, df BIGINT NOT NULL);
INSERT INTO lexeme_df SELECT u.lexeme, count(*) FROM chunks c, unnest(c.tsv) u GROUP BY u.lexeme;
CREATE TABLE corpus_stats (id BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id), n BIGINT NOT NULL, total_len BIGINT NOT NULL);
INSERT INTO corpus_stats SELECT TRUE, count(*), coalesce(sum(tsv_len), 0) FROM chunks;
"""
        ),
    ),
    # Later service-state tables (review queue, monitor runs), also defined beside their classes.
    *(Migration(v, name, lambda dim, lang, sql=sql: sql) for v, name, sql in LATER_STATE_MIGRATIONS),
    *(Migration(v, name, lambda dim, lang, sql=sql: sql) for v, name, sql in EXPERIMENT_MIGRATIONS),
    Migration(  # numbered after issue 16, so parallel work's numbers do not collide
        161,
        "context lines of chunks (record metadata in the indexed text)",
        lambda dim, lang: "ALTER TABLE chunks ADD COLUMN context TEXT NOT NULL DEFAULT '';",
    ),
    Migration(  # issue 19: BM25 postings for MaxScore (see pg_bm25); built here for an existing database
        193,
        "BM25 postings: lexeme, chunk, term frequency, chunk length",
        lambda dim, lang: (
            """
CREATE TABLE postings (lexeme TEXT NOT NULL, chunk_id TEXT NOT NULL, tf INTEGER NOT NULL, dl INTEGER NOT NULL,
                       PRIMARY KEY (lexeme, chunk_id) INCLUDE (tf, dl));
INSERT INTO postings SELECT u.lexeme, c.chunk_id, coalesce(array_length(u.positions, 1), 1), c.tsv_len
FROM chunks c, unnest(c.tsv) u ORDER BY 1, 2;
"""
        ),
    ),
    Migration(  # issue 19: postings by chunk row number, and the packed postings lists (see pg_packed)
        194,
        "BM25 postings by chunk row number; packed postings lists",
        lambda dim, lang: (
            """
SELECT pg_advisory_xact_lock(1735877239);  -- pg_upkeep.WRITE_LOCK: no write of an older version in flight
CREATE TABLE chunk_rows (row_no BIGINT GENERATED ALWAYS AS IDENTITY (SEQUENCE NAME chunk_row_no) PRIMARY KEY,
                         chunk_id TEXT NOT NULL UNIQUE);
INSERT INTO chunk_rows (chunk_id) SELECT chunk_id FROM chunks ORDER BY chunk_id;
CREATE TABLE postings_by_row (lexeme TEXT NOT NULL, row_no BIGINT NOT NULL, tf INTEGER NOT NULL, dl INTEGER NOT NULL,
                              CONSTRAINT postings_by_row_pkey PRIMARY KEY (lexeme, row_no) INCLUDE (tf, dl));
INSERT INTO postings_by_row SELECT p.lexeme, r.row_no, p.tf, p.dl FROM postings p JOIN chunk_rows r USING (chunk_id)
ORDER BY 1, 2;
DROP TABLE postings;
ALTER TABLE postings_by_row RENAME TO postings;
CREATE TABLE postings_packed (lexeme TEXT PRIMARY KEY, postings BYTEA NOT NULL);
ALTER TABLE postings_packed ALTER COLUMN postings SET STORAGE EXTERNAL;
"""
            + PACK_SQL
            + """;
INSERT INTO gw_meta VALUES ('bm25_packed', jsonb_build_object(
    'through', (SELECT coalesce(max(row_no), 0) FROM chunk_rows), 'chunks', (SELECT count(*) FROM chunk_rows),
    'at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')))
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value;
"""
        ),
    ),
]


def check_identifier(name: str, what: str) -> str:
    if not _IDENT.match(name):
        raise StoreError(f"{what} {name!r} is not a valid identifier: use lower-case letters, digits and _")
    return name


def migrate(dsn: str, schema: str, dimension: int, fts_language: str = "english") -> list[int]:
    """Apply the missing migrations; returns the versions applied (empty when up to date).

    Raises:
        StoreError: the server is unreachable, pgvector is missing, or the schema was created for
            another vector dimension or full-text language.
    """
    import psycopg

    check_identifier(schema, "postgres.schema_name")
    lang = check_identifier(fts_language.lower(), "postgres.fts_language")
    applied: list[int] = []
    try:
        with psycopg.connect(dsn, autocommit=True) as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            conn.execute(f"SET LOCAL search_path TO {schema}, public")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            if 1 in done:
                meta = conn.execute("SELECT value FROM gw_meta WHERE key = 'schema'").fetchone()[0]
                if meta["dimension"] != dimension or meta["fts_language"] != lang:
                    raise StoreError(
                        f"schema '{schema}' holds {meta['dimension']}-d vectors with full-text language "
                        f"'{meta['fts_language']}', but {dimension}-d / '{lang}' were asked for; use another postgres.schema_name"
                    )
            for m in MIGRATIONS:
                if m.version in done:
                    continue
                conn.execute(m.sql(dimension, lang))
                conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (m.version, m.name))
                applied.append(m.version)
    except psycopg.OperationalError as exc:
        raise StoreError(f"cannot connect to PostgreSQL ({redact_dsn(dsn)}): {str(exc).strip()}") from None
    except psycopg.errors.FeatureNotSupported as exc:
        raise StoreError(f"PostgreSQL at {redact_dsn(dsn)} lacks the pgvector extension: {exc}") from None
    return applied


def applied_migrations(dsn: str, schema: str) -> list[dict[str, Any]]:
    import psycopg

    with psycopg.connect(dsn) as conn:
        exists = conn.execute("SELECT to_regclass(%s)", (f"{schema}.schema_migrations",)).fetchone()[0]
        if exists is None:
            return []
        rows = conn.execute(
            f"SELECT version, name, applied_at FROM {schema}.schema_migrations ORDER BY version"
        ).fetchall()
    return [{"version": v, "name": n, "applied_at": a.isoformat(timespec="seconds")} for v, n, a in rows]


def make_pool(dsn: str, schema: str, min_size: int = 1, max_size: int = 8):
    """A psycopg_pool.ConnectionPool whose connections use ``schema`` and know the vector type.
    Call ``migrate`` first (the vector type must exist)."""
    from pgvector.psycopg import register_vector
    from psycopg_pool import ConnectionPool

    def configure(conn) -> None:
        conn.execute(f"SET search_path TO {schema}, public")
        conn.commit()
        register_vector(conn)

    pool = ConnectionPool(
        dsn, min_size=min_size, max_size=max_size, configure=configure, open=False, kwargs={"autocommit": False}
    )
    try:
        pool.open(wait=True, timeout=30)
    except Exception as exc:  # psycopg_pool.PoolTimeout: the server went away after migrate
        raise StoreError(f"cannot open a connection pool to PostgreSQL ({redact_dsn(dsn)}): {exc}") from None
    return pool


def state_pool(dsn: str, schema: str, max_size: int = 4):
    """A pool for the service state (keys, jobs, audit, rate limits) without opening the chunk store.
    Raises StoreError when the schema has not been migrated yet."""
    try:
        versions = {m["version"] for m in applied_migrations(dsn, schema)}
    except Exception as exc:  # psycopg.OperationalError and friends
        raise StoreError(f"cannot connect to PostgreSQL ({redact_dsn(dsn)}): {str(exc).strip()}") from None
    if not {m.version for m in MIGRATIONS} <= versions:
        raise StoreError(f"PostgreSQL schema '{schema}' is not up to date; run `groundwork db migrate`")
    return make_pool(dsn, schema, 1, max_size)


def schema_dimension(dsn: str, schema: str) -> int:
    """The vector dimension a migrated schema was created for. Raises StoreError when unreadable."""
    import psycopg

    check_identifier(schema, "postgres.schema_name")
    try:
        with psycopg.connect(dsn) as conn:
            row = conn.execute(f"SELECT value FROM {schema}.gw_meta WHERE key = 'schema'").fetchone()
    except psycopg.Error as exc:
        raise StoreError(f"cannot read the source schema '{schema}': {str(exc).strip()}") from None
    return int(row[0]["dimension"])


def migrate_configured(settings: Settings, dimension: int) -> tuple[list[int], int]:
    """``migrate`` for ``settings`` (pg_dsn, postgres.*): (versions applied now, version reached).
    Raises ConfigError without a DSN, StoreError as ``migrate`` does."""
    if not settings.pg_dsn:
        raise ConfigError("no database: pass --dsn or set GROUNDWORK_PG_DSN")
    pg = settings.postgres
    applied = migrate(settings.pg_dsn, pg.schema_name, dimension, pg.fts_language)
    return applied, applied_migrations(settings.pg_dsn, pg.schema_name)[-1]["version"]


def configured_status(settings: Settings) -> list[dict[str, Any]]:
    """The migrations applied to the configured schema. Raises StoreError when unreachable."""
    try:
        return applied_migrations(settings.pg_dsn or "", settings.postgres.schema_name)
    except Exception as exc:  # psycopg's connection errors
        raise StoreError(f"cannot read the migrations: {str(exc).strip()}") from None
