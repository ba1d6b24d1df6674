"""Pending actions: side-effect actions the model proposed that wait for a person (docs/agents.md).

A pending action is created ``pending``; a person confirms or rejects it. ``claim`` moves it out of
``pending`` with one conditional UPDATE (``... WHERE id = ? AND status = 'pending'``), which only one
caller can win, in one process or many (SQLite serialises writers; PostgreSQL row-locks the row), so
a double confirm never runs an action twice. A confirmed action is ``running`` until ``finish``
records ``done`` or ``failed`` with its result. Visibility follows the audit log's rule
(``groundwork.state.audit.visible``): a caller sees a pending action when it could see everything the
proposing caller could.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from groundwork.state import clock
from groundwork.state.audit import visible
from groundwork.types import Access

STATUSES = ("pending", "running", "done", "failed", "rejected")

_SQLITE = """
CREATE TABLE IF NOT EXISTS pending_actions (
    id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    status TEXT NOT NULL,
    tenant TEXT,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS pending_actions_status ON pending_actions(status, created_at);
"""


@dataclass
class PendingAction:
    """One proposed action. ``arguments`` were validated against the action's JSON Schema before it
    was stored; ``caller`` is the proposing key's name (never the key); ``answer_id`` the turn's
    audit record. ``decided_by`` names who confirmed or rejected it; ``result`` is the run's
    outcome (``ok``, ``status``, ``output`` or ``error``, ``attempts``, ``ms``)."""

    id: str
    action: str
    arguments: dict[str, Any]
    caller: str
    tenant: str | None
    access_groups: list[str] | None
    answer_id: str = ""
    created_at: str = field(default_factory=clock.now)
    status: str = "pending"
    decided_by: str | None = None
    decided_at: str | None = None
    result: dict[str, Any] | None = None

    @classmethod
    def new(cls, action: str, arguments: dict[str, Any], caller: str, access: Access | None, answer_id: str = ""):
        tenant = access.tenant if access is not None else None
        groups = None if access is None or access.everything else sorted(access.groups)
        return cls(uuid.uuid4().hex, action, arguments, caller, tenant, groups, answer_id)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class SqlitePendingActions:
    """Pending actions in ``actions.sqlite`` (WAL) in the knowledge-base folder."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SQLITE)

    def create(self, item: PendingAction) -> PendingAction:
        with self._lock:
            self._db.execute(
                "INSERT INTO pending_actions VALUES (?, ?, ?, ?, ?)",
                (item.id, item.created_at, item.status, item.tenant, json.dumps(item.to_dict())),
            )
        return item

    def get(self, item_id: str, access: Access | None = None) -> PendingAction | None:
        with self._lock:
            row = self._db.execute("SELECT record FROM pending_actions WHERE id = ?", (item_id,)).fetchone()
        return _visible(json.loads(row[0]) if row else None, access)

    def list(self, access: Access | None = None, status: str | None = None, limit: int = 100) -> list[PendingAction]:
        with self._lock:
            rows = self._db.execute(
                "SELECT record FROM pending_actions WHERE (? IS NULL OR status = ?) ORDER BY created_at DESC LIMIT ?",
                (status, status, limit * 10),
            ).fetchall()
        return [p for p in (_visible(json.loads(r[0]), access) for r in rows) if p is not None][:limit]

    def claim(self, item_id: str, to_status: str, who: str) -> bool:
        """Move a ``pending`` action to ``to_status`` (running or rejected); True for the one caller that won."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT record FROM pending_actions WHERE id = ? AND status = 'pending'", (item_id,)
                ).fetchone()
                if row is None:
                    self._db.execute("ROLLBACK")
                    return False
                rec = json.loads(row[0]) | {"status": to_status, "decided_by": who, "decided_at": clock.now()}
                cur = self._db.execute(
                    "UPDATE pending_actions SET status = ?, record = ? WHERE id = ? AND status = 'pending'",
                    (to_status, json.dumps(rec), item_id),
                )
                self._db.execute("COMMIT")
                return cur.rowcount == 1
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def finish(self, item_id: str, ok: bool, result: dict[str, Any]) -> None:
        """Record the run's outcome of a ``running`` action."""
        status = "done" if ok else "failed"
        with self._lock:
            row = self._db.execute("SELECT record FROM pending_actions WHERE id = ?", (item_id,)).fetchone()
            if row is None:
                return
            rec = json.loads(row[0]) | {"status": status, "result": result}
            self._db.execute(
                "UPDATE pending_actions SET status = ?, record = ? WHERE id = ? AND status = 'running'",
                (status, json.dumps(rec), item_id),
            )

    def close(self) -> None:
        self._db.close()


class PgPendingActions:
    """Pending actions in PostgreSQL, shared by every replica; same interface and guarantees as
    ``SqlitePendingActions`` (``claim`` is one conditional UPDATE: the row lock decides the winner)."""

    def __init__(self, pool) -> None:
        self.pool = pool  # the table is migration 181 (groundwork.state.pg_tables)

    def create(self, item: PendingAction) -> PendingAction:
        from psycopg.types.json import Jsonb

        with self.pool.connection() as conn:
            conn.execute(
                "INSERT INTO pending_actions VALUES (%s, %s, %s, %s, %s)",
                (item.id, item.created_at, item.status, item.tenant, Jsonb(item.to_dict())),
            )
        return item

    def get(self, item_id: str, access: Access | None = None) -> PendingAction | None:
        with self.pool.connection() as conn:
            row = conn.execute("SELECT record FROM pending_actions WHERE id = %s", (item_id,)).fetchone()
        return _visible(row[0] if row else None, access)

    def list(self, access: Access | None = None, status: str | None = None, limit: int = 100) -> list[PendingAction]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT record FROM pending_actions WHERE (%s::text IS NULL OR status = %s) "
                "ORDER BY created_at DESC LIMIT %s",
                (status, status, limit * 10),
            ).fetchall()
        return [p for p in (_visible(r[0], access) for r in rows) if p is not None][:limit]

    def claim(self, item_id: str, to_status: str, who: str) -> bool:
        patch = {"status": to_status, "decided_by": who, "decided_at": clock.now()}
        with self.pool.connection() as conn:
            cur = conn.execute(
                "UPDATE pending_actions SET status = %s, record = record || %s::jsonb "
                "WHERE id = %s AND status = 'pending'",
                (to_status, json.dumps(patch), item_id),
            )
            return cur.rowcount == 1

    def finish(self, item_id: str, ok: bool, result: dict[str, Any]) -> None:
        status = "done" if ok else "failed"
        patch = json.dumps({"status": status, "result": result})
        with self.pool.connection() as conn:
            conn.execute(
                "UPDATE pending_actions SET status = %s, record = record || %s::jsonb "
                "WHERE id = %s AND status = 'running'",
                (status, patch, item_id),
            )

    def close(self) -> None:
        pass  # the pool belongs to the store


def _visible(record: dict[str, Any] | None, access: Access | None) -> PendingAction | None:
    if record is None or not visible(record, access):
        return None
    return PendingAction(**record)
