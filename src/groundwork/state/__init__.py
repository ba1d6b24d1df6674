"""Service state: API keys, ingest jobs, the audit log and rate limits, each behind a protocol
(``state.protocols``) with an embedded (SQLite / in-memory) and a PostgreSQL implementation."""

from groundwork.state.audit import AuditNotFound, answer_record
from groundwork.state.jobs import Job, run_job
from groundwork.state.keys import SCOPES, ApiKey, ApiKeyError
from groundwork.state.protocols import AuditLog, JobQueue, KeyStore, RateLimiter

__all__ = [
    "SCOPES",
    "ApiKey",
    "ApiKeyError",
    "AuditLog",
    "AuditNotFound",
    "Job",
    "JobQueue",
    "KeyStore",
    "RateLimiter",
    "answer_record",
    "run_job",
]
