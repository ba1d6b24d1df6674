"""Service state: API keys, ingest jobs, the audit log, rate limits and the review queue, each behind a protocol
(``state.protocols``) with an embedded (SQLite / in-memory) and a PostgreSQL implementation."""

from groundwork.state.audit import AuditNotFound, answer_record
from groundwork.state.jobs import Job, run_job
from groundwork.state.keys import SCOPES, ApiKey, ApiKeyError
from groundwork.state.protocols import AuditLog, JobQueue, KeyStore, MonitorStore, RateLimiter, ReviewQueue
from groundwork.state.reviews import ReviewConflict, ReviewItem, ReviewNotFound

__all__ = [
    "SCOPES",
    "ApiKey",
    "ApiKeyError",
    "AuditLog",
    "AuditNotFound",
    "Job",
    "JobQueue",
    "KeyStore",
    "MonitorStore",
    "RateLimiter",
    "ReviewConflict",
    "ReviewItem",
    "ReviewNotFound",
    "ReviewQueue",
    "answer_record",
    "run_job",
]
