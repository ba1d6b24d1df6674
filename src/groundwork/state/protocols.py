"""The service state's replaceable parts, one protocol each: API keys, the ingest job queue, the audit
log, per-key rate limits, the review queue and the drift monitor's runs. Each has an embedded implementation (SQLite files, or process memory) and
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
from groundwork.state.pending import PendingAction
from groundwork.state.reviews import ReviewItem
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

    def submit_scheduled(self, kind: str, slot: int) -> Job | None:
        """Queue the job of schedule slot ``slot`` (id ``<kind>-<slot>``) unless a job of ``kind`` is
        queued or running anywhere, or that slot's job already exists; atomic across processes and
        replicas. Returns the queued job, or None."""
        ...

    def recent(self, kind: str, limit: int = 20) -> list[Job]:
        """The latest ``limit`` jobs of ``kind``, newest first (for operators: no access check)."""
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
class PendingActions(Protocol):
    """Side-effect actions waiting for a person's confirmation (``groundwork.state.pending``)."""

    def create(self, item: PendingAction) -> PendingAction:
        """Store a new ``pending`` action durably."""
        ...

    def get(self, item_id: str, access: Access | None = None) -> PendingAction | None:
        """The action, or None when it does not exist or ``access`` may not see it."""
        ...

    def list(self, access: Access | None = None, status: str | None = None, limit: int = 100) -> list[PendingAction]:
        """Actions ``access`` may see, newest first, optionally of one status."""
        ...

    def claim(self, item_id: str, to_status: str, who: str) -> bool:
        """Atomically move a ``pending`` action to ``running`` or ``rejected``, recording who; True only
        for the one caller (of any process) that won."""
        ...

    def finish(self, item_id: str, ok: bool, result: dict[str, Any]) -> None:
        """Record the outcome of a ``running`` action (``done`` or ``failed``)."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class ReviewQueue(Protocol):
    """Answers for a person to review (see ``groundwork.state.reviews``): opened by "not helpful"
    feedback, a low grounding score or an agent's escalation; resolved or dismissed by a reviewer.
    Every read is limited to items ``access`` may see (``ReviewItem.visible_to``)."""

    def open(
        self,
        kind: str,
        question: str,
        answer: str,
        evidence: list[dict[str, Any]] | None,
        answer_id: str | None,
        tenant: str | None,
        groups: list[str] | None,
        reason: str | None = None,
        asker: str | None = None,
    ) -> ReviewItem:
        """Open an item (``kind``: not_helpful | low_grounding | escalation | manual); while an item of
        the same ``answer_id`` is open, ``reason`` is added to it and it is returned instead. ``groups``
        None: the asker saw everything. ``asker`` is a key name, never a key. Texts are clipped to 20,000
        characters, evidence to 50 entries. Raises RequestError for an unknown kind or a bad tenant/group name."""
        ...

    def get(self, review_id: str, access: Access | None = None) -> ReviewItem:
        """The item, if ``access`` may see it. Raises ReviewNotFound."""
        ...

    def list(
        self, status: str | None = "open", limit: int = 50, offset: int = 0, access: Access | None = None
    ) -> list[ReviewItem]:
        """Items of ``status`` (None: all) that ``access`` may see, newest first. Raises RequestError
        for an unknown status."""
        ...

    def finish(
        self, review_id: str, status: str, resolution: dict[str, Any], access: Access | None = None
    ) -> ReviewItem:
        """Mark an open item 'resolved' or 'dismissed' with its ``resolution``, atomically (of two
        reviewers at once exactly one succeeds). Raises ReviewNotFound, ReviewConflict when it is
        no longer open, RequestError for another status."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class MonitorStore(Protocol):
    """The runs of the drift monitor (``groundwork.state.monitor``), newest first."""

    def add(self, run: dict[str, Any], baseline: bool = False) -> dict[str, Any]:
        """Store a run (JSON-able); returns it with ``run_id``, ``created_at`` (UTC ISO 8601) and
        ``baseline`` added. A run stored with ``baseline`` is what later runs are compared with."""
        ...

    def list(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest ``limit`` runs, newest first."""
        ...

    def baseline(self) -> dict[str, Any] | None:
        """The newest run stored as a baseline, or None."""
        ...

    def close(self) -> None: ...


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
