"""Service state: API keys, ingest jobs, the audit log, rate limits, the review queue, profiles and experiments,
each behind a protocol
(``state.protocols``) with an embedded (SQLite / in-memory) and a PostgreSQL implementation."""

from groundwork.state.audit import AuditNotFound, answer_record
from groundwork.state.jobs import Job, run_job
from groundwork.state.keys import SCOPES, ApiKey, ApiKeyError
from groundwork.state.protocols import (
    AuditLog,
    ExperimentStore,
    JobQueue,
    KeyStore,
    MonitorStore,
    ProfileStore,
    RateLimiter,
    ReviewQueue,
)
from groundwork.state.reviews import ReviewConflict, ReviewItem, ReviewNotFound

__all__ = [
    "SCOPES",
    "ApiKey",
    "ApiKeyError",
    "AuditLog",
    "AuditNotFound",
    "ExperimentStore",
    "Job",
    "JobQueue",
    "KeyStore",
    "MonitorStore",
    "ProfileStore",
    "RateLimiter",
    "ReviewConflict",
    "ReviewItem",
    "ReviewNotFound",
    "ReviewQueue",
    "answer_record",
    "run_job",
]
