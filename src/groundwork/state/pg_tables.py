"""The service state's PostgreSQL tables (keys, jobs and their files, audit and feedback, rate limits,
the review queue, monitor runs), as numbered migrations. ``groundwork.index.pg_schema`` applies them in
order with the store's own: ``STATE_MIGRATIONS`` after its first, ``LATER_STATE_MIGRATIONS`` after its last.
Later versions are numbered by area (171+: review queue and drift monitoring; 181+: agents) so that branches adding
migrations at the same time do not take the same number."""

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

LATER_STATE_MIGRATIONS: list[tuple[int, str, str]] = [
    (
        171,
        "review queue",
        """
CREATE TABLE reviews (
    review_id TEXT PRIMARY KEY, created_at TEXT NOT NULL, status TEXT NOT NULL, kind TEXT NOT NULL,
    answer_id TEXT, tenant TEXT, body JSONB NOT NULL
);
CREATE INDEX reviews_status ON reviews (status, created_at);
CREATE INDEX reviews_answer ON reviews (answer_id);
""",
    ),
    (
        172,
        "drift monitor runs",
        """
CREATE TABLE monitor_runs (run_id TEXT PRIMARY KEY, created_at TEXT NOT NULL, baseline BOOLEAN NOT NULL, body JSONB NOT NULL);
CREATE INDEX monitor_runs_created ON monitor_runs (created_at);
""",
    ),
    (
        181,  # 181+: agents
        "pending actions",
        """
CREATE TABLE pending_actions (
    id TEXT PRIMARY KEY, created_at TEXT NOT NULL, status TEXT NOT NULL, tenant TEXT, record JSONB NOT NULL
);
CREATE INDEX pending_actions_status ON pending_actions (status, created_at);
""",
    ),
]
