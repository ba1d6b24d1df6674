"""The audit log: one durable record per answer, in ``audit.sqlite`` beside the index.

A record holds: answer id, time (UTC ISO 8601), caller (key name, never the key; ``cli`` for the CLI),
tenant, question, the stand-alone search query and sub-questions, filter, retrieval mode, retrieved
chunk ids with scores, cited chunk ids, prompt template id and hash, generator model id, index version,
every guardrail decision, abstained/blocked, flags, latency per stage (ms), the answer text, and any
feedback given later. SQLite in WAL mode, one transaction per write, so a crash never leaves half a record.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from groundwork.errors import GroundworkError, RequestError
from groundwork.state import clock
from groundwork.state.sqlite import open_db
from groundwork.types import Access, Answer, to_wire

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    answer_id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    caller TEXT NOT NULL,
    tenant TEXT,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_created ON audit(created_at);
CREATE TABLE IF NOT EXISTS feedback (
    answer_id TEXT NOT NULL REFERENCES audit(answer_id),
    created_at TEXT NOT NULL,
    caller TEXT NOT NULL,
    rating TEXT NOT NULL CHECK (rating IN ('up', 'down')),
    comment TEXT
);
"""


# Columns beside the JSON record, so experiment figures are a query on indexed columns (migration 6
# in PostgreSQL; added in place to an older audit.sqlite).
ARM_COLUMNS = ("profile", "experiment_id", "arm")
# Columns another part may add (token accounting); read by ``arm_rows`` where present, else the
# record's keys prompt_tokens, completion_tokens and cost_usd (or cost).
_USAGE_COLUMNS = ("prompt_tokens", "completion_tokens", "cost")
_INSERT = "INSERT INTO audit (answer_id, created_at, caller, tenant, record, profile, experiment_id, arm) VALUES "


def _add_arm_columns(db: sqlite3.Connection) -> None:
    have = {r[1] for r in db.execute("PRAGMA table_info(audit)")}
    for col in ARM_COLUMNS:
        if col not in have:
            db.execute(f"ALTER TABLE audit ADD COLUMN {col} TEXT")
    db.execute("CREATE INDEX IF NOT EXISTS audit_experiment ON audit(experiment_id)")


def _arm_row(row: tuple, names: list[str]) -> dict[str, Any]:
    """One answer of an experiment for ``arm_stats``: (arm, record, ratings, caller, usage columns...)."""
    record = row[1] if isinstance(row[1], dict) else json.loads(row[1])
    ratings = [x for x in (row[2] or "").split(",") if x]
    usage = dict(zip(names, row[4:]))
    for key in ("prompt_tokens", "completion_tokens"):  # else the record's own keys, where token accounting writes them
        usage.setdefault(key, record.get(key))
    usage.setdefault("cost", record.get("cost_usd", record.get("cost")))
    return {
        "arm": row[0],
        "caller": row[3],
        "abstained": record.get("abstained"),
        "blocked": record.get("blocked"),
        "flags": record.get("flags"),
        "guardrails": record.get("guardrails"),
        "latency_ms": (record.get("latency_ms") or {}).get("total"),
        "ratings": ratings,
        **usage,
    }


_ARM_SQL = (
    "SELECT a.arm, a.record, (SELECT string_agg(f.rating, ',') FROM feedback f WHERE f.answer_id = a.answer_id), "
    "a.caller{usage} "
    "FROM audit a WHERE a.experiment_id = {param}"
)


class AuditNotFound(GroundworkError):
    """No audit record has this answer id (or the caller may not see it)."""


def answer_record(
    answer: Answer, caller: str, access: Access | None, mode: str, filter_text: str | None
) -> dict[str, Any]:
    """The audit record of ``answer`` as plain JSON-able data. ``access`` is the caller's: the record is
    later shown only to callers who can see at least everything this caller could."""
    tenant = access.tenant if access is not None else None
    return {
        "access_groups": None if access is None or access.everything else sorted(access.groups),
        "answer_id": answer.answer_id,
        "created_at": clock.now(),
        "caller": caller,
        "tenant": tenant,
        "question": answer.question,
        "search_query": answer.search_query,
        "sub_questions": answer.sub_questions,
        "filter": filter_text,
        "mode": mode,
        "retrieved": [
            {
                "chunk_id": h.chunk.chunk_id,
                "doc_id": h.chunk.doc_id,
                "source": h.chunk.source,
                "score": round(h.score, 6),
            }
            for h in answer.hits
        ],
        "cited": [{"n": c.n, "chunk_id": c.chunk_id, "doc_id": c.doc_id, "source": c.source} for c in answer.citations],
        "prompt": answer.prompt,
        "model_id": answer.model_id,
        "index_version": answer.index_version,
        "guardrails": [to_wire(g) for g in answer.guardrails],
        "abstained": answer.abstained,
        "blocked": answer.blocked,
        "flags": answer.flags,
        "invalid_citations": answer.invalid_citations,
        "latency_ms": answer.timings_ms,
        "answer": answer.answer,
    }


def visible(record: dict[str, Any], access: Access | None) -> bool:
    """Shown to ``access`` when it is of the record's tenant and has every group the asking caller
    had (so it could see every chunk the answer was built from). None/everything sees all."""
    if access is None or access.everything:
        return True
    if record.get("tenant") != access.tenant:
        return False
    asked_with = record.get("access_groups")
    if asked_with is None:  # asked with unrestricted access: only unrestricted callers see it
        return False
    return set(asked_with) <= set(access.groups)


class SqliteAuditLog:
    """The audit log in ``audit.sqlite`` (WAL mode) in the knowledge-base folder."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = open_db(self.path, _SCHEMA)
        _add_arm_columns(self._db)

    def write(self, record: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute(
                _INSERT + "(?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record["answer_id"],
                    record["created_at"],
                    record["caller"],
                    record.get("tenant"),
                    json.dumps(record, ensure_ascii=False),
                    *(record.get(c) for c in ARM_COLUMNS),
                ),
            )

    def arm_rows(self, experiment_id: str) -> list[dict[str, Any]]:
        """Every answer of the experiment (all tenants: for aggregate figures only), see ``arm_stats``."""
        with self._lock:
            names = [c for c in _USAGE_COLUMNS if c in {r[1] for r in self._db.execute("PRAGMA table_info(audit)")}]
            usage = "".join(f", a.{c}" for c in names)
            sql = _ARM_SQL.format(usage=usage, param="?").replace("string_agg", "group_concat")
            rows = self._db.execute(sql, (experiment_id,)).fetchall()
        return [_arm_row(r, names) for r in rows]

    def add_feedback(self, answer_id: str, rating: str, comment: str | None, caller: str) -> None:
        """Raises AuditNotFound for an unknown answer id, ValueError for a rating other than up/down."""
        if rating not in ("up", "down"):
            raise RequestError("rating must be 'up' or 'down'")
        with self._lock:
            if not self._db.execute("SELECT 1 FROM audit WHERE answer_id = ?", (answer_id,)).fetchone():
                raise AuditNotFound(f"no answer with id {answer_id}")
            self._db.execute(
                "INSERT INTO feedback VALUES (?, ?, ?, ?, ?)",
                (answer_id, clock.now(), caller, rating, comment),
            )

    def _with_feedback(self, record: dict[str, Any]) -> dict[str, Any]:
        rows = self._db.execute(
            "SELECT created_at, caller, rating, comment FROM feedback WHERE answer_id = ? ORDER BY created_at",
            (record["answer_id"],),
        ).fetchall()
        record["feedback"] = [{"created_at": r[0], "caller": r[1], "rating": r[2], "comment": r[3]} for r in rows]
        return record

    def get(self, answer_id: str, access: Access | None = None) -> dict[str, Any]:
        """The record, if ``access`` may see it (see ``visible``). Raises AuditNotFound."""
        with self._lock:
            row = self._db.execute("SELECT record FROM audit WHERE answer_id = ?", (answer_id,)).fetchone()
            record = json.loads(row[0]) if row else None
            if record is None or not visible(record, access):
                raise AuditNotFound(f"no answer with id {answer_id}")
            return self._with_feedback(record)

    def list(self, limit: int = 50, offset: int = 0, access: Access | None = None) -> list[dict[str, Any]]:
        """Newest first, only records ``access`` may see."""
        with self._lock:
            if access is None or access.everything:
                rows = self._db.execute(
                    "SELECT record FROM audit ORDER BY created_at DESC LIMIT ? OFFSET ?", (limit, offset)
                ).fetchall()
                return [self._with_feedback(json.loads(r[0])) for r in rows]
            rows = self._db.execute(
                "SELECT record FROM audit WHERE tenant IS ? ORDER BY created_at DESC", (access.tenant,)
            ).fetchall()
            records = [rec for rec in (json.loads(r[0]) for r in rows) if visible(rec, access)]
            return [self._with_feedback(r) for r in records[offset : offset + limit]]

    def close(self) -> None:
        self._db.close()


class PgAuditLog:
    """The audit log in PostgreSQL (``audit`` and ``feedback`` tables), shared by every replica.
    Same interface and visibility rule as ``SqliteAuditLog``; ``pool`` is a psycopg_pool.ConnectionPool."""

    def __init__(self, pool) -> None:
        self.pool = pool

    def write(self, record: dict[str, Any]) -> None:
        from psycopg.types.json import Jsonb

        with self.pool.connection() as conn:
            conn.execute(
                _INSERT + "(%s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    record["answer_id"],
                    record["created_at"],
                    record["caller"],
                    record.get("tenant"),
                    Jsonb(record),
                    *(record.get(c) for c in ARM_COLUMNS),
                ),
            )

    def arm_rows(self, experiment_id: str) -> list[dict[str, Any]]:
        """Every answer of the experiment (all tenants: for aggregate figures only), see ``arm_stats``."""
        with self.pool.connection() as conn:
            present = conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'audit' "
                "AND table_schema = current_schema()"
            ).fetchall()
            names = [c for c in _USAGE_COLUMNS if c in {r[0] for r in present}]
            usage = "".join(f", a.{c}" for c in names)
            rows = conn.execute(_ARM_SQL.format(usage=usage, param="%s"), (experiment_id,)).fetchall()
        return [_arm_row(r, names) for r in rows]

    def add_feedback(self, answer_id: str, rating: str, comment: str | None, caller: str) -> None:
        if rating not in ("up", "down"):
            raise RequestError("rating must be 'up' or 'down'")
        with self.pool.connection() as conn:
            if not conn.execute("SELECT 1 FROM audit WHERE answer_id = %s", (answer_id,)).fetchone():
                raise AuditNotFound(f"no answer with id {answer_id}")
            conn.execute(
                "INSERT INTO feedback VALUES (%s, %s, %s, %s, %s)",
                (answer_id, clock.now(), caller, rating, comment),
            )

    def _with_feedback(self, conn, record: dict[str, Any]) -> dict[str, Any]:
        rows = conn.execute(
            "SELECT created_at, caller, rating, comment FROM feedback WHERE answer_id = %s ORDER BY created_at",
            (record["answer_id"],),
        ).fetchall()
        record["feedback"] = [{"created_at": r[0], "caller": r[1], "rating": r[2], "comment": r[3]} for r in rows]
        return record

    def get(self, answer_id: str, access: Access | None = None) -> dict[str, Any]:
        with self.pool.connection() as conn:
            row = conn.execute("SELECT record FROM audit WHERE answer_id = %s", (answer_id,)).fetchone()
            if row is None or not visible(row[0], access):
                raise AuditNotFound(f"no answer with id {answer_id}")
            return self._with_feedback(conn, row[0])

    def list(self, limit: int = 50, offset: int = 0, access: Access | None = None) -> list[dict[str, Any]]:
        with self.pool.connection() as conn:
            if access is None or access.everything:
                rows = conn.execute(
                    "SELECT record FROM audit ORDER BY created_at DESC LIMIT %s OFFSET %s", (limit, offset)
                ).fetchall()
                return [self._with_feedback(conn, r[0]) for r in rows]
            rows = conn.execute(
                "SELECT record FROM audit WHERE tenant IS NOT DISTINCT FROM %s ORDER BY created_at DESC",
                (access.tenant,),
            ).fetchall()
            records = [r[0] for r in rows if visible(r[0], access)]
            return [self._with_feedback(conn, r) for r in records[offset : offset + limit]]

    def close(self) -> None:
        pass  # the pool belongs to the store
