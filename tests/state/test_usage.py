"""The usage log and the daily quota check on a real SQLite file: per-tenant overrides, the reset time
(next UTC midnight), sums by key, tenant and day."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from groundwork.config import QuotaSettings
from groundwork.errors import QuotaExceeded, RequestError
from groundwork.state.usage import SqliteUsageLog, check_quota


def row(answer_id: str, tenant: str | None, day: str, tokens: int, key: str = "k1") -> dict:
    return {
        "answer_id": answer_id,
        "created_at": f"{day}T10:00:00.000+00:00",
        "day": day,
        "key_id": key,
        "caller": f"name-{key}",
        "tenant": tenant,
        "profile": None,
        "model_id": "openai:gpt-4o-mini",
        "prompt_tokens": tokens,
        "completion_tokens": 10,
        "cost_usd": 0.001,
        "cached": 0,
    }


def test_the_quota_counts_one_tenant_one_utc_day_and_names_the_reset(tmp_path: Path) -> None:
    log = SqliteUsageLog(tmp_path / "usage.sqlite")
    log.record(row("a", "acme", "2026-03-01", 90))
    log.record(row("b", "acme", "2026-02-28", 500))  # yesterday does not count
    log.record(row("c", "globex", "2026-03-01", 500))  # nor another tenant
    log.record(row("d", None, "2026-03-01", 500))
    quota = QuotaSettings(daily_tokens_per_tenant=100, tenants={"globex": 10_000})
    now = datetime(2026, 3, 1, 23, 59, 30, tzinfo=UTC)
    assert log.tokens_on("acme", "2026-03-01") == 100
    with pytest.raises(QuotaExceeded) as exc:
        check_quota(log, quota, "acme", now)
    assert exc.value.reset_at == "2026-03-02T00:00:00Z" and exc.value.retry_after_s == 30
    assert "used 100 of the 100 tokens" in str(exc.value) and "2026-03-02T00:00:00Z" in str(exc.value)
    check_quota(log, quota, "globex", now)  # its own, larger quota
    with pytest.raises(QuotaExceeded, match="callers without a tenant"):
        check_quota(log, quota, None, now)
    check_quota(log, QuotaSettings(), "acme", now)  # no quota configured


def test_usage_sums_by_key_tenant_and_day(tmp_path: Path) -> None:
    log = SqliteUsageLog(tmp_path / "usage.sqlite")
    for i, (tenant, day, key) in enumerate([("acme", "2026-03-01", "k1"), ("acme", "2026-03-01", "k2"),
                                            ("acme", "2026-03-02", "k1"), (None, "2026-03-02", "k3")]):  # fmt: skip
        log.record(row(str(i), tenant, day, 100, key))
    by_day = log.aggregate(["day"])
    assert [(r["day"], r["answers"], r["total_tokens"]) for r in by_day] == [
        ("2026-03-01", 2, 220),
        ("2026-03-02", 2, 220),
    ]
    mine = log.aggregate(["key", "day"], key_id="k1", since="2026-03-02")
    assert [(r["key_id"], r["key_name"], r["day"]) for r in mine] == [("k1", "name-k1", "2026-03-02")]
    no_tenant = log.aggregate(["tenant"], tenant=(True, None))
    assert [(r["tenant"], r["answers"], r["cost_usd"]) for r in no_tenant] == [(None, 1, 0.001)]
    with pytest.raises(RequestError, match="use one or more of key, tenant, profile, day"):
        log.aggregate(["key; DROP TABLE usage"])
