"""Background ingestion: a job queue persisted in ``jobs.sqlite`` and a worker thread.

An upload is written to ``uploads/<job id>/`` and its job row committed *before* the API answers 202,
so a crash or kill -9 loses nothing that was accepted: on start, jobs left ``running`` are put back to
``queued`` and the worker resumes them (ingest is idempotent, so a half-done job simply re-runs).
Processing moves each file to ``files/<tenant>/<name>`` (its stable document id) and ingests it with
the job's access control; per-file results are stored on the job.
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from groundwork.types import Access

log = logging.getLogger("groundwork.jobs")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


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

    def to_dict(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "status": self.status, "kind": self.kind, "created_at": self.created_at,
                "finished_at": self.finished_at, "files": self.files, "total": len(self.files), "done": self.done,
                "results": self.results, "error": self.error}  # fmt: skip


_SCHEMA = "CREATE TABLE IF NOT EXISTS jobs (job_id TEXT PRIMARY KEY, created_at TEXT NOT NULL, status TEXT NOT NULL, tenant TEXT, body TEXT NOT NULL)"


class JobQueue:
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
            self._db.execute("INSERT OR REPLACE INTO jobs VALUES (?, ?, ?, ?, ?)", (job.job_id, job.created_at, job.status, job.tenant, body))

    def _select(self, where: str, args: tuple = ()) -> list[Job]:
        with self._lock:
            rows = self._db.execute(f"SELECT body FROM jobs WHERE {where} ORDER BY created_at", args).fetchall()
        return [Job(**json.loads(r[0])) for r in rows]

    # -- API ------------------------------------------------------------------------------------------
    def submit(self, files: dict[str, bytes], caller: str, access: Access, groups: list[str],
               options: dict[str, Any] | None = None, kind: str = "upload") -> Job:  # fmt: skip
        """Persist the files and the job (durably) and wake the worker. Returns the queued job."""
        job = Job(uuid.uuid4().hex, "queued", _now(), caller, access.tenant, groups, sorted(files), kind=kind, options=options or {})
        folder = self.uploads / job.job_id
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (folder / name).write_bytes(data)
        self._save(job)  # committed after the bytes are on disk: a row always has its files
        self._wake.set()
        return job

    def get(self, job_id: str, access: Access) -> Job | None:
        jobs = self._select("job_id = ?", (job_id,))
        if not jobs or not (access.everything or jobs[0].tenant == access.tenant):
            return None
        return jobs[0]

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
            try:
                process(job)
                job.status = "failed" if job.results and all(r["status"] == "failed" for r in job.results) else "done"
            except Exception as exc:  # one bad job never stops the worker
                log.exception("job %s failed", job.job_id)
                job.status, job.error = "failed", f"{type(exc).__name__}: {exc}"
            job.finished_at = _now()
            self._save(job)
            shutil.rmtree(self.uploads / job.job_id, ignore_errors=True)

    def save_progress(self, job: Job) -> None:
        self._save(job)

    def close(self) -> None:
        self._db.close()
