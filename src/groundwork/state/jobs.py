"""Background ingestion: a job queue (``jobs.sqlite``, or PostgreSQL) and a worker thread.

An upload's bytes are stored and its job row committed *before* the API answers 202, so a crash or
kill -9 loses nothing that was accepted: on start, jobs left ``running`` are put back to ``queued``
and the worker resumes them (ingest is idempotent, so a half-done job simply re-runs).

Files are staged as ``uploads/<job id>/<n>`` — ``n`` the file's position in ``Job.files`` — so nothing
on disk is ever named by a user-supplied name. A file that was being read when the process died
twice (an out-of-memory kill, say) is failed on the next start instead of read again: no crash loop.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import sqlite3
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from groundwork.state import clock
from groundwork.types import Access

log = logging.getLogger("groundwork.jobs")


@dataclass
class Job:
    job_id: str
    status: str  # queued | running | done | failed
    created_at: str
    caller: str
    tenant: str | None
    groups: list[str]
    files: list[str]  # file names, in uploads/<job_id>/
    kind: str = "upload"  # upload | sync
    done: int = 0
    results: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    finished_at: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    creator: str | None = None  # key id of the key that submitted it (always sees it)
    starts: dict[str, int] = field(default_factory=dict)  # file name -> times a worker began reading it
    summary: dict[str, int] = field(default_factory=dict)  # sync jobs: added, updated, unchanged, deleted, failed

    def visible_to(self, access: Access, key_id: str | None = None) -> bool:
        """Shown to its creator, and to callers who may see every document it writes (its tenant,
        and one of its groups when it has any)."""
        if access.everything or (key_id is not None and key_id == self.creator):
            return True
        return access.can_see(self.tenant, self.groups)

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "status": self.status,
            "kind": self.kind,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
            "files": self.files,
            "total": len(self.files),
            "done": self.done,
            "results": self.results,
            "error": self.error,
            "summary": self.summary or None,
        }


MAX_STARTS = 2  # a file whose reading was begun this often without finishing is failed, not retried


def new_job(
    files: list[str],
    caller: str,
    access: Access,
    groups: list[str],
    options: dict[str, Any] | None,
    kind: str,
    creator: str | None = None,
) -> Job:
    """A queued job of ``caller`` (a key name; ``creator`` its key id) for ``access``'s tenant."""
    return Job(
        uuid.uuid4().hex,
        "queued",
        clock.now(),
        caller,
        access.tenant,
        groups,
        files,
        kind=kind,
        options=options or {},
        creator=creator,
    )


def scheduled_job(kind: str, slot: int) -> Job:
    """The job of schedule slot ``slot`` (``floor(unix time / interval)``): its id is the slot's, so
    replicas scheduling the same slot insert one job between them."""
    job = new_job([], "scheduler", Access(), [], None, kind)
    job.job_id = f"{kind}-{slot}"
    return job


def staged_path(uploads: Path, job: Job, name: str) -> Path:
    """Where a job's file is staged: ``uploads/<job id>/<position>`` (never the user's file name)."""
    return uploads / job.job_id / str(job.files.index(name))


def run_job(job: Job, process: Callable[[Job], None]) -> None:
    """Process ``job`` and set its outcome: failed when every file failed or ``process`` raised (one
    bad job never stops a worker), else done."""
    try:
        process(job)
        job.status = "failed" if job.results and all(r["status"] == "failed" for r in job.results) else "done"
    except Exception as exc:
        log.exception("job %s failed", job.job_id)
        job.status, job.error = "failed", f"{type(exc).__name__}: {exc}"
    job.finished_at = clock.now()


_SCHEMA = "CREATE TABLE IF NOT EXISTS jobs (job_id TEXT PRIMARY KEY, created_at TEXT NOT NULL, status TEXT NOT NULL, tenant TEXT, body TEXT NOT NULL)"


class SqliteJobQueue:
    """Jobs in ``jobs.sqlite`` (WAL mode), processed by one worker thread of this process."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.uploads = root / "uploads"
        self.files = root / "files"
        self._lock = threading.Lock()
        self._wake = threading.Event()
        root.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(root / "jobs.sqlite", check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)
        # A job that was running when the process died is resumed from the start.
        for job in self._select("status = 'running'"):
            job.status = "queued"
            self._save(job)

    # -- persistence ----------------------------------------------------------------------------------
    def _save(self, job: Job) -> None:
        body = json.dumps(job.__dict__)
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO jobs VALUES (?, ?, ?, ?, ?)",
                (job.job_id, job.created_at, job.status, job.tenant, body),
            )

    def _select(self, where: str, args: tuple = ()) -> list[Job]:
        with self._lock:
            rows = self._db.execute(f"SELECT body FROM jobs WHERE {where} ORDER BY created_at", args).fetchall()
        return [Job(**json.loads(r[0])) for r in rows]

    # -- API ------------------------------------------------------------------------------------------
    def submit(
        self,
        files: dict[str, bytes],
        caller: str,
        access: Access,
        groups: list[str],
        options: dict[str, Any] | None = None,
        kind: str = "upload",
        creator: str | None = None,
    ) -> Job:
        """Persist the files and the job (durably) and wake the worker. Returns the queued job."""
        job = new_job(sorted(files), caller, access, groups, options, kind, creator)
        if files:
            (self.uploads / job.job_id).mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            staged_path(self.uploads, job, name).write_bytes(data)
        self._save(job)  # committed after the bytes are on disk: a row always has its files
        self._wake.set()
        return job

    def get(self, job_id: str, access: Access, key_id: str | None = None) -> Job | None:
        jobs = self._select("job_id = ?", (job_id,))
        return jobs[0] if jobs and jobs[0].visible_to(access, key_id) else None

    def submit_scheduled(self, kind: str, slot: int) -> Job | None:
        """Queue the job of schedule slot ``slot`` unless a job of ``kind`` is queued or running, or
        that slot's job exists (one transaction). Returns the job, or None when none was queued."""
        job = scheduled_job(kind, slot)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")  # the check and the insert are one step for every process
            try:
                busy = self._db.execute(
                    "SELECT 1 FROM jobs WHERE job_id = ? OR (status IN ('queued', 'running') "
                    "AND json_extract(body, '$.kind') = ?)",
                    (job.job_id, kind),
                ).fetchone()
                if busy is None:
                    self._db.execute(
                        "INSERT INTO jobs VALUES (?, ?, ?, ?, ?)",
                        (job.job_id, job.created_at, job.status, job.tenant, json.dumps(job.__dict__)),
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        if busy is not None:
            return None
        self._wake.set()
        return job

    def recent(self, kind: str, limit: int = 20) -> list[Job]:
        """The latest ``limit`` jobs of ``kind``, newest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT body FROM jobs WHERE json_extract(body, '$.kind') = ? ORDER BY created_at DESC LIMIT ?",
                (kind, limit),
            ).fetchall()
        return [Job(**json.loads(r[0])) for r in rows]

    def next_queued(self) -> Job | None:
        jobs = self._select("status = 'queued'")
        return jobs[0] if jobs else None

    def run_forever(self, process: Callable[[Job], None], stop: threading.Event) -> None:
        """The worker loop: take the oldest queued job, process it, repeat; sleep until woken."""
        while not stop.is_set():
            job = self.next_queued()
            if job is None:
                self._wake.wait(timeout=1.0)
                self._wake.clear()
                continue
            job.status = "running"
            self._save(job)
            run_job(job, process)
            self._save(job)
            shutil.rmtree(self.uploads / job.job_id, ignore_errors=True)

    def save_progress(self, job: Job) -> None:
        self._save(job)

    def close(self) -> None:
        self._db.close()


class PgJobQueue:
    """The job queue in PostgreSQL, shared by every replica (``jobs`` and ``job_files`` tables).

    An upload's bytes are stored with its job row in one transaction, so any replica can run it. A
    worker claims the oldest runnable job with ``SELECT ... FOR UPDATE SKIP LOCKED`` (two workers never
    take the same one) and refreshes ``heartbeat_at`` while it runs; a job whose heartbeat is older
    than ``lease_s`` (its worker died) is runnable again and is retried from the start (ingest is
    idempotent). Files are staged in the local ``uploads/<job id>/`` only while being processed.
    """

    def __init__(self, pool, root: Path, lease_s: float = 30.0) -> None:
        self.pool, self.root, self.lease_s = pool, root, lease_s
        self.uploads = root / "uploads"
        self.files = root / "files"
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._wake = threading.Event()
        root.mkdir(parents=True, exist_ok=True)

    def _save(self, job: Job, conn=None) -> None:
        from psycopg.types.json import Jsonb

        sql = (
            "INSERT INTO jobs (job_id, created_at, status, tenant, body) VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT (job_id) DO UPDATE SET status = EXCLUDED.status, body = EXCLUDED.body"
        )
        args = (job.job_id, job.created_at, job.status, job.tenant, Jsonb(job.__dict__))
        if conn is not None:
            conn.execute(sql, args)
            return
        with self.pool.connection() as c:
            c.execute(sql, args)

    def submit(
        self,
        files: dict[str, bytes],
        caller: str,
        access: Access,
        groups: list[str],
        options: dict[str, Any] | None = None,
        kind: str = "upload",
        creator: str | None = None,
    ) -> Job:
        job = new_job(sorted(files), caller, access, groups, options, kind, creator)
        with self.pool.connection() as conn, conn.transaction():
            self._save(job, conn)
            for name, data in files.items():
                conn.execute("INSERT INTO job_files VALUES (%s, %s, %s)", (job.job_id, name, data))
        self._wake.set()
        return job

    def get(self, job_id: str, access: Access, key_id: str | None = None) -> Job | None:
        with self.pool.connection() as conn:
            row = conn.execute("SELECT body FROM jobs WHERE job_id = %s", (job_id,)).fetchone()
        job = Job(**row[0]) if row is not None else None
        return job if job is not None and job.visible_to(access, key_id) else None

    def submit_scheduled(self, kind: str, slot: int) -> Job | None:
        """As ``SqliteJobQueue.submit_scheduled``, across replicas: a transaction-scoped advisory lock
        makes the check and the insert one step, and the slot's job id is unique."""
        job = scheduled_job(kind, slot)
        with self.pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"groundwork-schedule-{kind}",))
            busy = conn.execute(
                "SELECT 1 FROM jobs WHERE job_id = %s OR (status IN ('queued', 'running') AND body->>'kind' = %s)",
                (job.job_id, kind),
            ).fetchone()
            if busy is None:
                self._save(job, conn)
        if busy is not None:
            return None
        self._wake.set()
        return job

    def recent(self, kind: str, limit: int = 20) -> list[Job]:
        """The latest ``limit`` jobs of ``kind``, newest first."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT body FROM jobs WHERE body->>'kind' = %s ORDER BY created_at DESC LIMIT %s", (kind, limit)
            ).fetchall()
        return [Job(**r[0]) for r in rows]

    def claim(self) -> Job | None:
        """Take the oldest queued job, or a running one whose worker stopped heart-beating."""
        with self.pool.connection() as conn, conn.transaction():
            row = conn.execute(
                "SELECT body FROM jobs WHERE status = 'queued' OR (status = 'running' AND heartbeat_at < now() - make_interval(secs => %s)) "
                "ORDER BY created_at FOR UPDATE SKIP LOCKED LIMIT 1",
                (self.lease_s,),
            ).fetchone()
            if row is None:
                return None
            job = Job(**row[0])
            if job.status == "running":
                log.warning("job %s: worker %s stopped; retrying it here", job.job_id, row[0].get("worker"))
                job.done, job.results = 0, []
            job.status = "running"
            job.options = {**job.options, "worker": self.worker_id}
            self._save(job, conn)
            conn.execute(
                "UPDATE jobs SET worker = %s, heartbeat_at = now() WHERE job_id = %s", (self.worker_id, job.job_id)
            )
            files = conn.execute("SELECT name, data FROM job_files WHERE job_id = %s", (job.job_id,)).fetchall()
        folder = self.uploads / job.job_id
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in files:
            staged_path(self.uploads, job, name).write_bytes(bytes(data))
        return job

    def _heartbeat(self, job_id: str, done: threading.Event) -> None:
        while not done.wait(self.lease_s / 3):
            with self.pool.connection() as conn:
                conn.execute(
                    "UPDATE jobs SET heartbeat_at = now() WHERE job_id = %s AND worker = %s", (job_id, self.worker_id)
                )

    def run_forever(self, process: Callable[[Job], None], stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                job = self.claim()
            except Exception:  # the database is briefly unreachable: wait, retry
                log.exception("could not claim a job")
                job = None
            if job is None:
                self._wake.wait(timeout=1.0)
                self._wake.clear()
                continue
            beating = threading.Event()
            threading.Thread(target=self._heartbeat, args=(job.job_id, beating), daemon=True).start()
            try:
                run_job(job, process)
            finally:
                beating.set()
            with self.pool.connection() as conn, conn.transaction():
                self._save(job, conn)
                conn.execute("DELETE FROM job_files WHERE job_id = %s", (job.job_id,))
            shutil.rmtree(self.uploads / job.job_id, ignore_errors=True)

    def save_progress(self, job: Job) -> None:
        self._save(job)

    def close(self) -> None:
        pass  # the pool belongs to the service
