"""The service state's replaceable parts, one protocol each: API keys, the ingest job queue, the audit
log and per-key rate limits. Each has an embedded implementation (SQLite files, or process memory) and
a PostgreSQL one shared by every replica; ``groundwork.wiring`` chooses by ``settings.store``, and
``tests/state/test_state_contract.py`` runs one suite against both.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from groundwork.state.jobs import Job
from groundwork.state.keys import ApiKey
from groundwork.types import Access


@runtime_checkable
class KeyStore(Protocol):
    """API keys: only a salted hash of each key is stored; a key is shown once, at creation."""

    def create(
        self, name: str, scopes: list[str], groups: list[str] | None = None, tenant: str | None = None
    ) -> tuple[ApiKey, str]:
        """(the key's record, the key ``gw_<id>_<secret>``). Raises ApiKeyError for an unknown scope,
        an invalid group or tenant name, or an empty name."""
        ...

    def verify(self, secret: str) -> ApiKey | None:
        """The record when ``secret`` is a valid, unrevoked key (constant-time comparison); else None."""
        ...

    def list(self) -> list[ApiKey]:
        """Every key's record, oldest first (never the keys themselves)."""
        ...

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key from the next request on; returns its record. Raises ApiKeyError for an unknown id."""
        ...


@runtime_checkable
class JobQueue(Protocol):
    """Durable background ingest jobs.

    A submitted job survives a crash (its files are stored before ``submit`` returns) and is resumed:
    a job left running by a dead worker is run again from the start (ingest is idempotent).
    ``uploads`` is the local folder where a job's files are staged while it runs (``uploads/<job id>/``);
    ``files`` where the embedded store keeps uploaded files as documents.
    """

    uploads: Path
    files: Path

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
        """Store the files (name -> bytes) and a queued job, durably, and wake a worker. Files are
        staged under ``staged_path`` (by position, never by name); ``creator`` is the key id."""
        ...

    def get(self, job_id: str, access: Access, key_id: str | None = None) -> Job | None:
        """The job, or None when it does not exist or may not be seen (``Job.visible_to``)."""
        ...

    def run_forever(self, process: Callable[[Job], None], stop: threading.Event) -> None:
        """The worker loop: run queued jobs through ``process`` (see ``run_job``) until ``stop`` is set."""
        ...

    def save_progress(self, job: Job) -> None:
        """Persist a running job's progress (``done``, ``results``)."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class AuditLog(Protocol):
    """One durable record per answer (see ``answer_record``), plus the feedback given on it."""

    def write(self, record: dict[str, Any]) -> None:
        """Store one record (one transaction: a crash never leaves half a record)."""
        ...

    def add_feedback(self, answer_id: str, rating: str, comment: str | None, caller: str) -> None:
        """Attach feedback. Raises AuditNotFound for an unknown answer id, RequestError for a rating
        other than up/down."""
        ...

    def get(self, answer_id: str, access: Access | None = None) -> dict[str, Any]:
        """The record with its feedback, if ``access`` may see it (``visible``). Raises AuditNotFound."""
        ...

    def list(self, limit: int = 50, offset: int = 0, access: Access | None = None) -> list[dict[str, Any]]:
        """Records ``access`` may see, newest first."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class RateLimiter(Protocol):
    """A token bucket per key: ``burst`` requests at once, refilled at a steady rate."""

    def take(self, key: str) -> float:
        """0.0 when the request may go ahead (a token is taken), else the seconds until one is available."""
        ...


@runtime_checkable
class UsageLog(Protocol):
    """Tokens and cost of every answer (``groundwork.state.usage``), the count behind daily quotas."""

    def record(self, row: dict[str, Any]) -> None:
        """Store one answer's row (``groundwork.state.usage.COLUMNS``)."""
        ...

    def tokens_on(self, tenant: str | None, day: str) -> int:
        """Prompt + completion tokens of ``tenant``'s answers on ``day`` (YYYY-MM-DD, UTC)."""
        ...

    def aggregate(
        self,
        by: list[str],
        key_id: str | None = None,
        tenant: tuple[bool, str | None] = (False, None),
        since: str | None = None,
        until: str | None = None,
    ) -> list[dict[str, Any]]:
        """Sums (answers, cached, prompt/completion/total tokens, cost_usd) per group of ``by`` (key,
        tenant, profile, day). Raises RequestError for an unknown group."""
        ...

    def close(self) -> None: ...
