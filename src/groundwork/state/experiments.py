"""Experiments: a share of the traffic answered with a treatment profile, the rest with the control.

Routing is by a stable hash of the caller's API key id: ``bucket = sha256(experiment id + ":" + key
id) mod 10000`` (the first 8 bytes, big-endian); buckets below ``share * 100`` get the treatment. The
same key always gets the same arm of one experiment, on every replica and across restarts; a new
experiment (new id) reshuffles the keys. At most one experiment runs at a time (a unique index on the
running one), so an answer's arm is never ambiguous.

An experiment with ``canary`` thresholds is a canary: once the treatment has ``min_answers`` answers,
crossing any threshold ends it as ``rolled_back`` (see ``groundwork.state.arm_stats.canary_verdict``).
Every start and end is an event (who, why, the figures at the time) kept with the experiment.
Ending is a conditional update of the running row, so when several replicas see the same crossing at
once exactly one records the rollback.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import sqlite3
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from groundwork.errors import GroundworkError
from groundwork.state import clock
from groundwork.state.profiles import Profile
from groundwork.state.sqlite import immediate, open_db

ARMS = ("control", "treatment")
BUCKETS = 10_000
ENDINGS = ("stopped", "promoted", "rolled_back")
EXPERIMENT_ID = re.compile(r"^exp-[0-9a-f]{12}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS experiments (
    experiment_id TEXT PRIMARY KEY, created_at TEXT NOT NULL, status TEXT NOT NULL, body TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS experiments_one_running ON experiments (status) WHERE status = 'running';
CREATE TABLE IF NOT EXISTS experiment_events (
    experiment_id TEXT NOT NULL, created_at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
    reason TEXT NOT NULL, figures TEXT NOT NULL
);
"""


class ExperimentError(GroundworkError):
    """An invalid experiment, a second one while one runs, or an unknown or finished experiment."""


class ExperimentNotFound(ExperimentError):
    """No experiment has this id (or none runs)."""


class ExperimentConflict(ExperimentError):
    """Another experiment is running, or this one is not running any more."""


@dataclass(frozen=True)
class CanaryThresholds:
    """Guard thresholds of a canary, on the treatment arm's figures (rates in 0..1); None = unchecked.

    ``min_grounding`` is the minimum share of non-abstained answers that passed the grounding check;
    ``max_error_rate`` the maximum share of answers whose LLM backend failed (answered by the fallback)
    or that an output guardrail blocked. Nothing is judged before ``min_answers`` treatment answers."""

    max_abstention_rate: float | None = None
    min_grounding: float | None = None
    max_error_rate: float | None = None
    min_answers: int = 50

    def __post_init__(self) -> None:
        for name in ("max_abstention_rate", "min_grounding", "max_error_rate"):
            v = getattr(self, name)
            if v is not None and not 0.0 <= v <= 1.0:
                raise ExperimentError(f"canary {name}: {v} is not a rate between 0 and 1")
        if not 1 <= self.min_answers <= 1_000_000:
            raise ExperimentError(f"canary min_answers: {self.min_answers} is not between 1 and 1000000")
        if self.max_abstention_rate is None and self.min_grounding is None and self.max_error_rate is None:
            raise ExperimentError(
                "a canary needs at least one threshold: max_abstention_rate, min_grounding or max_error_rate"
            )


@dataclass(frozen=True)
class Experiment:
    """One experiment. ``control``/``treatment`` are profile refs (``name@version``); ``share`` the
    treatment's percentage of keys (0 < share <= 100); ``status``: running, stopped, promoted, rolled_back."""

    experiment_id: str
    control: str
    treatment: str
    share: float
    canary: CanaryThresholds | None = None
    status: str = "running"
    created_at: str = ""
    created_by: str = ""
    ended_at: str | None = None
    ended_by: str | None = None
    end_reason: str | None = None

    def arm(self, key_id: str) -> str:
        """The arm of ``key_id``: "treatment" when its bucket is below share x 100, else "control"."""
        return "treatment" if bucket(self.experiment_id, key_id) < round(self.share * 100) else "control"

    def profile_ref(self, arm: str) -> str:
        return self.treatment if arm == "treatment" else self.control

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["canary"] = asdict(self.canary) if self.canary else None
        return d


@dataclass(frozen=True)
class Assignment:
    """What one answer runs with: the profile (None: the plain settings), and the experiment and arm
    it was routed by (None outside an experiment). Written into the answer's audit record."""

    profile: Profile | None = None
    experiment: Experiment | None = None
    arm: str | None = None

    def audit_fields(self) -> dict[str, Any]:
        return {
            "profile": self.profile.ref if self.profile else None,
            "experiment_id": self.experiment.experiment_id if self.experiment else None,
            "arm": self.arm,
        }


@dataclass(frozen=True)
class ExperimentEvent:
    """A start or an end of an experiment: who (a key name, ``cli``, or ``canary`` with the replica),
    what (start, stopped, promoted, rolled_back), why, and the per-arm figures at that moment."""

    experiment_id: str
    created_at: str
    actor: str
    action: str
    reason: str
    figures: dict[str, Any] = field(default_factory=dict)


def bucket(experiment_id: str, key_id: str) -> int:
    """The key's bucket 0..9999 in this experiment (sha256 of ``experiment_id:key_id``)."""
    digest = hashlib.sha256(f"{experiment_id}:{key_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def new_experiment(
    control: str, treatment: str, share: float, canary: CanaryThresholds | None, actor: str
) -> Experiment:
    """A running experiment, checked. Raises ExperimentError for a share outside (0, 100] or one profile twice."""
    if not 0 < share <= 100:
        raise ExperimentError(f"share: {share} is not a percentage in (0, 100]")
    if control == treatment:
        raise ExperimentError(f"control and treatment are both {control}: compare two different profile versions")
    now = clock.now()
    return Experiment(f"exp-{secrets.token_hex(6)}", control, treatment, float(share), canary, "running", now, actor)


def _experiment(body: Any) -> Experiment:
    d = body if isinstance(body, dict) else json.loads(body)
    canary = CanaryThresholds(**d["canary"]) if d.get("canary") else None
    return Experiment(**{**d, "canary": canary})


def _event(row: tuple) -> ExperimentEvent:
    figures = row[5] if isinstance(row[5], dict) else json.loads(row[5])
    return ExperimentEvent(row[0], row[1], row[2], row[3], row[4], figures)


def _ended(exp: Experiment, status: str, actor: str, reason: str) -> Experiment:
    if status not in ENDINGS:
        raise ExperimentError(f"an experiment ends as one of {', '.join(ENDINGS)}, not {status!r}")
    now = clock.now()
    return Experiment(**{**exp.__dict__, "status": status, "ended_at": now, "ended_by": actor, "end_reason": reason})


def check_id(experiment_id: str) -> str:
    """``experiment_id`` when it has the form of one (``exp-`` and 12 hex digits); else ExperimentNotFound,
    before any store is asked (an id from a URL is hostile input)."""
    if not EXPERIMENT_ID.match(experiment_id):
        raise ExperimentNotFound(f"no experiment {experiment_id[:80]!r}; ids look like exp-0123456789ab")
    return experiment_id


_RUNNING = "another experiment is running ({}); stop or promote it first (one experiment at a time)"


class SqliteExperimentStore:
    """Experiments in ``experiments.sqlite`` (WAL mode) in the knowledge-base folder."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = open_db(self.path, _SCHEMA)

    def start(self, exp: Experiment, figures: dict[str, Any] | None = None) -> Experiment:
        with self._lock:
            try:
                with immediate(self._db):
                    self._db.execute(
                        "INSERT INTO experiments VALUES (?, ?, 'running', ?)",
                        (exp.experiment_id, exp.created_at, json.dumps(exp.to_dict())),
                    )
                    self._add_event(exp.experiment_id, exp.created_by, "start", "started", figures or {})
            except sqlite3.IntegrityError:
                running = self.running_locked()
                raise ExperimentConflict(_RUNNING.format(running.experiment_id if running else "?")) from None
        return exp

    def running_locked(self) -> Experiment | None:
        row = self._db.execute("SELECT body FROM experiments WHERE status = 'running'").fetchone()
        return _experiment(row[0]) if row else None

    def running(self) -> Experiment | None:
        with self._lock:
            return self.running_locked()

    def get(self, experiment_id: str) -> Experiment:
        check_id(experiment_id)
        with self._lock:
            row = self._db.execute("SELECT body FROM experiments WHERE experiment_id = ?", (experiment_id,)).fetchone()
        if row is None:
            raise ExperimentNotFound(f"no experiment {experiment_id[:80]!r}; `groundwork experiment list` shows them")
        return _experiment(row[0])

    def list(self) -> list[Experiment]:
        with self._lock:
            rows = self._db.execute("SELECT body FROM experiments ORDER BY created_at DESC").fetchall()
        return [_experiment(r[0]) for r in rows]

    def end(
        self, experiment_id: str, status: str, actor: str, reason: str, figures: dict[str, Any]
    ) -> Experiment | None:
        exp = _ended(self.get(experiment_id), status, actor, reason)
        with self._lock, immediate(self._db):
            cur = self._db.execute(
                "UPDATE experiments SET status = ?, body = ? WHERE experiment_id = ? AND status = 'running'",
                (status, json.dumps(exp.to_dict()), experiment_id),
            )
            if cur.rowcount == 1:
                self._add_event(experiment_id, actor, status, reason, figures)
        return exp if cur.rowcount == 1 else None

    def events(self, experiment_id: str) -> list[ExperimentEvent]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM experiment_events WHERE experiment_id = ? ORDER BY created_at", (experiment_id,)
            ).fetchall()
        return [_event(r) for r in rows]

    def _add_event(self, experiment_id: str, actor: str, action: str, reason: str, figures: dict) -> None:
        now = clock.now()
        self._db.execute(
            "INSERT INTO experiment_events VALUES (?, ?, ?, ?, ?, ?)",
            (experiment_id, now, actor, action, reason, json.dumps(figures, default=str)),
        )

    def close(self) -> None:
        self._db.close()


class PgExperimentStore:
    """Experiments in PostgreSQL (``experiments``, ``experiment_events``), shared by every replica."""

    def __init__(self, pool) -> None:
        self.pool = pool

    def start(self, exp: Experiment, figures: dict[str, Any] | None = None) -> Experiment:
        import psycopg
        from psycopg.types.json import Jsonb

        try:
            with self.pool.connection() as conn:
                conn.execute(
                    "INSERT INTO experiments VALUES (%s, %s, 'running', %s)",
                    (exp.experiment_id, exp.created_at, Jsonb(exp.to_dict())),
                )
                self._add_event(conn, exp.experiment_id, exp.created_by, "start", "started", figures or {})
        except psycopg.errors.UniqueViolation:
            running = self.running()
            raise ExperimentConflict(_RUNNING.format(running.experiment_id if running else "?")) from None
        return exp

    def running(self) -> Experiment | None:
        with self.pool.connection() as conn:
            row = conn.execute("SELECT body FROM experiments WHERE status = 'running'").fetchone()
        return _experiment(row[0]) if row else None

    def get(self, experiment_id: str) -> Experiment:
        check_id(experiment_id)
        with self.pool.connection() as conn:
            row = conn.execute("SELECT body FROM experiments WHERE experiment_id = %s", (experiment_id,)).fetchone()
        if row is None:
            raise ExperimentNotFound(f"no experiment {experiment_id[:80]!r}; `groundwork experiment list` shows them")
        return _experiment(row[0])

    def list(self) -> list[Experiment]:
        with self.pool.connection() as conn:
            rows = conn.execute("SELECT body FROM experiments ORDER BY created_at DESC").fetchall()
        return [_experiment(r[0]) for r in rows]

    def end(
        self, experiment_id: str, status: str, actor: str, reason: str, figures: dict[str, Any]
    ) -> Experiment | None:
        from psycopg.types.json import Jsonb

        exp = _ended(self.get(experiment_id), status, actor, reason)
        with self.pool.connection() as conn:
            cur = conn.execute(
                "UPDATE experiments SET status = %s, body = %s WHERE experiment_id = %s AND status = 'running'",
                (status, Jsonb(exp.to_dict()), experiment_id),
            )
            if cur.rowcount == 1:
                self._add_event(conn, experiment_id, actor, status, reason, figures)
        return exp if cur.rowcount == 1 else None

    def events(self, experiment_id: str) -> list[ExperimentEvent]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT * FROM experiment_events WHERE experiment_id = %s ORDER BY created_at", (experiment_id,)
            ).fetchall()
        return [_event(r) for r in rows]

    @staticmethod
    def _add_event(conn, experiment_id: str, actor: str, action: str, reason: str, figures: dict) -> None:
        from psycopg.types.json import Jsonb

        now = clock.now()
        conn.execute(
            "INSERT INTO experiment_events VALUES (%s, %s, %s, %s, %s, %s)",
            (experiment_id, now, actor, action, reason, Jsonb(json.loads(json.dumps(figures, default=str)))),
        )

    def close(self) -> None:
        pass  # the pool belongs to the store
