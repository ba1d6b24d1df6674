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
]

# Profiles, experiments and the audit columns naming an answer's profile and arm. Numbered 6 to leave
# room for the migrations of parallel work; applied after the store's migration 3 (see pg_schema).
EXPERIMENT_MIGRATIONS: list[tuple[int, str, str]] = [
    (
        6,
        "profiles, experiments, audit profile/experiment/arm",
        """
CREATE TABLE profiles (name TEXT NOT NULL, version INTEGER NOT NULL, override JSONB NOT NULL,
                       created_at TEXT NOT NULL, created_by TEXT NOT NULL, PRIMARY KEY (name, version));
CREATE TABLE state_values (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE experiments (experiment_id TEXT PRIMARY KEY, created_at TEXT NOT NULL, status TEXT NOT NULL, body JSONB NOT NULL);
CREATE UNIQUE INDEX experiments_one_running ON experiments (status) WHERE status = 'running';
CREATE TABLE experiment_events (experiment_id TEXT NOT NULL, created_at TEXT NOT NULL, actor TEXT NOT NULL,
                                action TEXT NOT NULL, reason TEXT NOT NULL, figures JSONB NOT NULL);
CREATE INDEX experiment_events_id ON experiment_events (experiment_id, created_at);
ALTER TABLE audit ADD COLUMN profile TEXT, ADD COLUMN experiment_id TEXT, ADD COLUMN arm TEXT;
CREATE INDEX audit_experiment ON audit (experiment_id);
""",
    ),
]
