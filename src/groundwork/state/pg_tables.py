"""The service state's PostgreSQL tables (keys, jobs and their files, audit and feedback, rate limits),
as numbered migrations. ``groundwork.index.pg_schema`` applies them in order with the store's own."""

from __future__ import annotations

STATE_MIGRATIONS: list[tuple[int, str, str]] = [
    (
        2,
        "service state: keys, jobs, audit, rate limits",
        """
CREATE TABLE api_keys (
    key_id TEXT PRIMARY KEY, name TEXT NOT NULL, salt BYTEA NOT NULL, hash BYTEA NOT NULL,
    scopes TEXT NOT NULL, groups TEXT NOT NULL, tenant TEXT, created_at TEXT NOT NULL, revoked_at TEXT
);
CREATE TABLE jobs (
    job_id TEXT PRIMARY KEY, created_at TEXT NOT NULL, status TEXT NOT NULL, tenant TEXT,
    body JSONB NOT NULL, worker TEXT, heartbeat_at TIMESTAMPTZ
);
CREATE INDEX jobs_queued ON jobs (status, created_at);
CREATE TABLE job_files (job_id TEXT NOT NULL REFERENCES jobs(job_id) ON DELETE CASCADE, name TEXT NOT NULL,
                        data BYTEA NOT NULL, PRIMARY KEY (job_id, name));
CREATE TABLE audit (answer_id TEXT PRIMARY KEY, created_at TEXT NOT NULL, caller TEXT NOT NULL, tenant TEXT, record JSONB NOT NULL);
CREATE INDEX audit_created ON audit (created_at);
CREATE TABLE feedback (answer_id TEXT NOT NULL REFERENCES audit(answer_id), created_at TEXT NOT NULL, caller TEXT NOT NULL,
                       rating TEXT NOT NULL CHECK (rating IN ('up', 'down')), comment TEXT);
CREATE TABLE rate_buckets (key TEXT PRIMARY KEY, tokens DOUBLE PRECISION NOT NULL, updated_at TIMESTAMPTZ NOT NULL);
""",
    ),
    (
        17,  # issue 17's number: helpers working at once each took their own, so none collide
        "answer cache; token usage and cost per answer",
        """
CREATE TABLE answer_cache (key TEXT PRIMARY KEY, created_at DOUBLE PRECISION NOT NULL, index_version INTEGER,
                           answer_id TEXT NOT NULL, payload JSONB NOT NULL);
CREATE INDEX answer_cache_created ON answer_cache (created_at);
CREATE TABLE usage (answer_id TEXT PRIMARY KEY, created_at TEXT NOT NULL, day TEXT NOT NULL, key_id TEXT,
                    caller TEXT NOT NULL, tenant TEXT, profile TEXT, model_id TEXT, prompt_tokens INTEGER NOT NULL,
                    completion_tokens INTEGER NOT NULL, cost_usd DOUBLE PRECISION NOT NULL, cached INTEGER NOT NULL);
CREATE INDEX usage_tenant_day ON usage (tenant, day);
CREATE INDEX usage_day ON usage (day);
""",
    ),
]
