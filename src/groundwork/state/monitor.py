"""Monitor runs: one record per ``groundwork monitor run`` (eval metrics on the live index, drift of
recent traffic), kept for the Health page's trends, the Prometheus gauges and the next comparison.

A run is plain JSON (see ``groundwork.evaluate.monitor``); ``baseline`` marks the run later runs are
compared with. Embedded: ``monitor.sqlite`` in the knowledge-base folder; PostgreSQL: ``monitor_runs``.
"""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path
from typing import Any

from groundwork.state import clock
from groundwork.state.sqlite import open_db

_SCHEMA = """
CREATE TABLE IF NOT EXISTS monitor_runs (
    run_id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    baseline INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS monitor_runs_created ON monitor_runs(created_at);
"""


def _stamp(run: dict[str, Any], baseline: bool) -> dict[str, Any]:
    return {**run, "run_id": uuid.uuid4().hex[:16], "created_at": clock.now(), "baseline": baseline}


class SqliteMonitorStore:
    """Monitor runs in ``monitor.sqlite`` (WAL mode)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = open_db(self.path, _SCHEMA)

    def add(self, run: dict[str, Any], baseline: bool = False) -> dict[str, Any]:
        run = _stamp(run, baseline)
        with self._lock:
            self._db.execute(
                "INSERT INTO monitor_runs VALUES (?, ?, ?, ?)",
                (run["run_id"], run["created_at"], int(baseline), json.dumps(run)),
            )
        return run

    def list(self, limit: int = 50) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT body FROM monitor_runs ORDER BY created_at DESC, run_id LIMIT ?", (limit,)
            ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def baseline(self) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT body FROM monitor_runs WHERE baseline = 1 ORDER BY created_at DESC LIMIT 1"
            ).fetchone()
        return json.loads(row[0]) if row else None

    def close(self) -> None:
        self._db.close()


class PgMonitorStore:
    """Monitor runs in PostgreSQL (``monitor_runs``), shared by every replica."""

    def __init__(self, pool) -> None:
        self.pool = pool

    def add(self, run: dict[str, Any], baseline: bool = False) -> dict[str, Any]:
        from psycopg.types.json import Jsonb

        run = _stamp(run, baseline)
        with self.pool.connection() as conn:
            conn.execute(
                "INSERT INTO monitor_runs VALUES (%s, %s, %s, %s)",
                (run["run_id"], run["created_at"], baseline, Jsonb(run)),
            )
        return run

    def list(self, limit: int = 50) -> list[dict[str, Any]]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT body FROM monitor_runs ORDER BY created_at DESC, run_id LIMIT %s", (limit,)
            ).fetchall()
        return [r[0] for r in rows]

    def baseline(self) -> dict[str, Any] | None:
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT body FROM monitor_runs WHERE baseline ORDER BY created_at DESC LIMIT 1"
            ).fetchone()
        return row[0] if row else None

    def close(self) -> None:
        pass  # the pool belongs to the store


SUMMARY_DIMS = 8  # numbers kept per question: enough for a distribution test, too few to recover it
_SEED = 17
_projections: dict[int, Any] = {}


def query_summary(vector: Any) -> list[float]:
    """A compact summary of a query embedding for drift monitoring: its projection on 8 fixed random
    Gaussian directions (seeded, so every process projects alike), 4 decimals. Random projections keep
    distances between vectors approximately (Johnson & Lindenstrauss 1984; Achlioptas 2003, "Database-
    friendly random projections"), so a shift of the questions' topics shifts these numbers too.
    ``vector``: (dimension,) float array, L2-normalised."""
    import numpy as np

    v = np.asarray(vector, dtype=np.float64).ravel()
    if v.size not in _projections:
        rng = np.random.default_rng(_SEED)
        _projections[v.size] = rng.standard_normal((v.size, SUMMARY_DIMS)) / np.sqrt(SUMMARY_DIMS)
    return [round(float(x), 4) for x in v @ _projections[v.size]]
