"""Service state: API keys, ingest jobs, the audit log, rate limits, profiles and experiments, each behind a protocol
(``state.protocols``) with an embedded (SQLite / in-memory) and a PostgreSQL implementation."""

from groundwork.state.audit import AuditNotFound, answer_record
from groundwork.state.jobs import Job, run_job
from groundwork.state.keys import SCOPES, ApiKey, ApiKeyError
from groundwork.state.protocols import AuditLog, ExperimentStore, JobQueue, KeyStore, ProfileStore, RateLimiter

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
    "ProfileStore",
    "RateLimiter",
    "answer_record",
    "run_job",
]
