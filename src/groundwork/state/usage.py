"""Token usage and cost per answer: ``usage.sqlite`` beside the index, or the ``usage`` table in
PostgreSQL (shared by every replica, so a per-tenant daily quota counts every replica's answers).

One row per answer: answer id, UTC time and day, key id and name, tenant, profile (the named
configuration that answered; NULL until profiles exist), model id, prompt and completion tokens,
cost in USD, and whether it was served from the answer cache. Aggregates group by key, tenant,
profile and day.
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from groundwork.config import QuotaSettings
from groundwork.errors import QuotaExceeded, RequestError
from groundwork.types import Access, Answer, TokenUsage

if TYPE_CHECKING:
    from groundwork.state.protocols import UsageLog

GROUPS = {"key": ("key_id",), "tenant": ("tenant",), "profile": ("profile",), "day": ("day",)}
COLUMNS = (
    "answer_id",
    "created_at",
    "day",
    "key_id",
    "caller",
    "tenant",
    "profile",
    "model_id",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "cached",
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (
    answer_id TEXT PRIMARY KEY, created_at TEXT NOT NULL, day TEXT NOT NULL, key_id TEXT, caller TEXT NOT NULL,
    tenant TEXT, profile TEXT, model_id TEXT, prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,
    cost_usd REAL NOT NULL, cached INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS usage_tenant_day ON usage(tenant, day);
CREATE INDEX IF NOT EXISTS usage_day ON usage(day);
"""


def group_columns(by: list[str]) -> list[str]:
    """The columns of ``by`` (key, tenant, profile, day). Raises RequestError for another name."""
    bad = [b for b in by if b not in GROUPS]
    if bad or not by:
        raise RequestError(f"group by {', '.join(bad) or 'nothing'}: use one or more of {', '.join(GROUPS)}")
    return [c for b in dict.fromkeys(by) for c in GROUPS[b]]


def _aggregate_sql(by: list[str], where: list[str], mark: str) -> str:
    cols = group_columns(by)
    select = ", ".join(cols)
    key_name = ", max(caller) AS key_name" if "key_id" in cols else ""
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return (
        f"SELECT {select}{key_name}, count(*) AS answers, sum(cached) AS cached, sum(prompt_tokens) AS prompt_tokens, "
        f"sum(completion_tokens) AS completion_tokens, sum(cost_usd) AS cost_usd FROM usage{clause} "
        f"GROUP BY {select} ORDER BY {select}"
    ).replace("?", mark)


def _filters(key_id: str | None, tenant: tuple[bool, str | None], since: str | None, until: str | None, null_eq: str):
    where, args = [], []
    if key_id is not None:
        where.append("key_id = ?")
        args.append(key_id)
    if tenant[0]:
        where.append(f"tenant {null_eq} ?")
        args.append(tenant[1])
    if since:
        where.append("day >= ?")
        args.append(since)
    if until:
        where.append("day <= ?")
        args.append(until)
    return where, args


def _rows(cursor: Any) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    out = []
    for row in cursor.fetchall():
        r = dict(zip(names, row, strict=True))
        r["cost_usd"] = round(float(r["cost_usd"] or 0), 6)
        for k in ("answers", "cached", "prompt_tokens", "completion_tokens"):
            r[k] = int(r[k] or 0)
        r["total_tokens"] = r["prompt_tokens"] + r["completion_tokens"]
        out.append(r)
    return out


class SqliteUsageLog:
    """The usage table in ``usage.sqlite`` (WAL mode) in the knowledge-base folder."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def record(self, row: dict[str, Any]) -> None:
        """Store one answer's row (``COLUMNS``), in one transaction."""
        with self._lock:
            self._db.execute(
                f"INSERT OR REPLACE INTO usage VALUES ({', '.join('?' * len(COLUMNS))})", [row[c] for c in COLUMNS]
            )

    def tokens_on(self, tenant: str | None, day: str) -> int:
        """Prompt + completion tokens of ``tenant``'s answers on ``day`` (YYYY-MM-DD, UTC)."""
        with self._lock:
            row = self._db.execute(
                "SELECT coalesce(sum(prompt_tokens + completion_tokens), 0) FROM usage WHERE tenant IS ? AND day = ?",
                (tenant, day),
            ).fetchone()
        return int(row[0])

    def aggregate(
        self,
        by: list[str],
        key_id: str | None = None,
        tenant: tuple[bool, str | None] = (False, None),
        since: str | None = None,
        until: str | None = None,
    ) -> list[dict[str, Any]]:
        """Sums per group of ``by`` (key, tenant, profile, day), only rows of ``key_id`` when given,
        of ``tenant[1]`` when ``tenant[0]``, between the days ``since`` and ``until`` (inclusive).
        Raises RequestError for an unknown group."""
        where, args = _filters(key_id, tenant, since, until, "IS")
        with self._lock:
            return _rows(self._db.execute(_aggregate_sql(by, where, "?"), args))

    def close(self) -> None:
        self._db.close()


class PgUsageLog:
    """The ``usage`` table in PostgreSQL (migration 17), on the process's pool."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    def record(self, row: dict[str, Any]) -> None:
        with self.pool.connection() as conn:
            conn.execute(
                f"INSERT INTO usage VALUES ({', '.join(['%s'] * len(COLUMNS))}) ON CONFLICT (answer_id) DO NOTHING",
                [row[c] for c in COLUMNS],
            )

    def tokens_on(self, tenant: str | None, day: str) -> int:
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT coalesce(sum(prompt_tokens + completion_tokens), 0) FROM usage "
                "WHERE tenant IS NOT DISTINCT FROM %s AND day = %s",
                (tenant, day),
            ).fetchone()
        return int(row[0])

    def aggregate(
        self,
        by: list[str],
        key_id: str | None = None,
        tenant: tuple[bool, str | None] = (False, None),
        since: str | None = None,
        until: str | None = None,
    ) -> list[dict[str, Any]]:
        where, args = _filters(key_id, tenant, since, until, "IS NOT DISTINCT FROM")
        with self.pool.connection() as conn:
            return _rows(conn.execute(_aggregate_sql(by, where, "%s"), args))

    def close(self) -> None:
        pass  # the pool belongs to the store


NO_TENANT = "~"  # the name of "no tenant" in quota.tenants (not a valid tenant name)


def daily_limit(quota: QuotaSettings, tenant: str | None) -> int | None:
    """The daily token quota of ``tenant``: its entry in ``quota.tenants``, else the default; None: no quota."""
    return quota.tenants.get(tenant or NO_TENANT, quota.daily_tokens_per_tenant)


def check_quota(log: UsageLog, quota: QuotaSettings, tenant: str | None, now: datetime | None = None) -> None:
    """Raise QuotaExceeded when ``tenant`` already used its daily quota (counted in ``log``, which
    every replica writes, so a quota holds across replicas). An answer running when the quota is
    reached still finishes: the quota may be overrun by the answers in flight at that moment."""
    limit = daily_limit(quota, tenant)
    if limit is None:
        return
    now = now or datetime.now(UTC)
    used = log.tokens_on(tenant, now.date().isoformat())
    if used >= limit:
        reset = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
        wait = max(1, int((reset - now).total_seconds()))
        raise QuotaExceeded(tenant, limit, used, reset.isoformat().replace("+00:00", "Z"), wait)


def usage_row(
    answer: Answer, caller: str, key_id: str | None, access: Access | None, profile: str | None, created_at: str
) -> dict[str, Any]:
    """The ``usage`` row of ``answer`` (``created_at``: its audit record's UTC time, ISO 8601)."""
    u = answer.usage or TokenUsage()
    return {
        "answer_id": answer.answer_id,
        "created_at": created_at,
        "day": created_at[:10],
        "key_id": key_id,
        "caller": caller,
        "tenant": access.tenant if access is not None and not access.everything else None,
        "profile": profile,
        "model_id": answer.model_id,
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "cost_usd": u.cost_usd,
        "cached": int(answer.cached_from is not None),
    }


def audit_keys(answer: Answer) -> dict[str, Any]:
    """What the audit record says about the cache and tokens of ``answer`` (keys of their own)."""
    u = answer.usage or TokenUsage()
    return {
        "cached": answer.cached_from is not None,
        "cached_from": answer.cached_from,
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "token_source": u.source,
        "cost_usd": u.cost_usd,
    }
