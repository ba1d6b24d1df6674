"""The answer cache's durable table: ``cache.sqlite`` beside the index, or ``answer_cache`` in
PostgreSQL (shared by every replica). Keys are opaque sha256 digests (see ``groundwork.answer.cache``);
values are the already-guarded answer as JSON. Entries older than ``ttl_s`` are never returned; each
``PRUNE_EVERY`` writes, entries of older index versions, expired ones and the oldest beyond
``max_entries`` are deleted.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

PRUNE_EVERY = 64  # writes between two prunes (and the first write of a process)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answer_cache (
    key TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    index_version INTEGER,
    answer_id TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS answer_cache_created ON answer_cache(created_at);
"""


class _Pruning:
    def __init__(self, max_entries: int, ttl_s: float) -> None:
        self.max_entries, self.ttl_s = max_entries, ttl_s
        self._writes = 0
        self._count_lock = threading.Lock()

    def due(self) -> bool:
        with self._count_lock:
            self._writes += 1
            return self._writes % PRUNE_EVERY == 1


class SqliteAnswerCache(_Pruning):
    """The table in ``cache.sqlite`` (WAL mode: processes on one knowledge base share it)."""

    def __init__(self, path: str | Path, max_entries: int, ttl_s: float) -> None:
        super().__init__(max_entries, ttl_s)
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored answer of ``key`` unless it expired; None otherwise."""
        with self._lock:
            row = self._db.execute(
                "SELECT payload FROM answer_cache WHERE key = ? AND created_at >= ?", (key, time.time() - self.ttl_s)
            ).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, index_version: int | None, answer_id: str, payload: dict[str, Any]) -> None:
        """Store (or replace) ``key``; prunes now and then (see the module docstring)."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO answer_cache VALUES (?, ?, ?, ?, ?)",
                (key, time.time(), index_version, answer_id, json.dumps(payload, ensure_ascii=False)),
            )
            if self.due():
                self._db.execute(
                    "DELETE FROM answer_cache WHERE created_at < ? OR index_version < ?",
                    (time.time() - self.ttl_s, index_version or 0),
                )
                self._db.execute(
                    "DELETE FROM answer_cache WHERE key IN "
                    "(SELECT key FROM answer_cache ORDER BY created_at DESC LIMIT -1 OFFSET ?)",
                    (self.max_entries,),
                )

    def close(self) -> None:
        self._db.close()


class PgAnswerCache(_Pruning):
    """The ``answer_cache`` table in PostgreSQL (migration 17), on the process's pool."""

    def __init__(self, pool: Any, max_entries: int, ttl_s: float) -> None:
        super().__init__(max_entries, ttl_s)
        self.pool = pool

    def get(self, key: str) -> dict[str, Any] | None:
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT payload FROM answer_cache WHERE key = %s AND created_at >= %s",
                (key, time.time() - self.ttl_s),
            ).fetchone()
        return row[0] if row else None

    def put(self, key: str, index_version: int | None, answer_id: str, payload: dict[str, Any]) -> None:
        from psycopg.types.json import Jsonb

        with self.pool.connection() as conn:
            # Two replicas that missed at once both store: the later one wins, either is correct.
            conn.execute(
                "INSERT INTO answer_cache VALUES (%s, %s, %s, %s, %s) ON CONFLICT (key) DO UPDATE SET "
                "created_at = EXCLUDED.created_at, index_version = EXCLUDED.index_version, "
                "answer_id = EXCLUDED.answer_id, payload = EXCLUDED.payload",
                (key, time.time(), index_version, answer_id, Jsonb(payload)),
            )
            if self.due():
                conn.execute(
                    "DELETE FROM answer_cache WHERE created_at < %s OR index_version < %s",
                    (time.time() - self.ttl_s, index_version or 0),
                )
                conn.execute(
                    "DELETE FROM answer_cache WHERE key IN "
                    "(SELECT key FROM answer_cache ORDER BY created_at DESC OFFSET %s)",
                    (self.max_entries,),
                )

    def close(self) -> None:
        pass  # the pool belongs to the store
