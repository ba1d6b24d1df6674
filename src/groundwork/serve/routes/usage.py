"""``GET /v1/usage``: tokens and cost of answers, summed by key, tenant, profile and day."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from groundwork.errors import GroundworkError
from groundwork.serve.auth import Principal
from groundwork.serve.deps import QUERY, SERVICE
from groundwork.serve.errors import AUTH_ERRORS, ApiError, user_error
from groundwork.serve.service import Service

router = APIRouter(tags=["query"])
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class UsageRow(BaseModel):
    """One group's sums; the grouping fields present are those of ``by``. Tokens are prompt (input)
    and completion (output) tokens; ``cost_usd`` in US dollars from the ``pricing`` table; ``cached``
    counts answers served from the answer cache (0 tokens each)."""

    key_id: str | None = None
    key_name: str | None = None
    tenant: str | None = None
    profile: str | None = None
    day: str | None = None
    answers: int
    cached: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: float


def _day(value: str | None, name: str) -> str | None:
    if value is not None and not _DAY.match(value):
        raise ApiError(422, "invalid_request", f"{name}: a UTC day as YYYY-MM-DD, e.g. 2026-01-31")
    return value


@router.get("/v1/usage", response_model=list[UsageRow], responses=AUTH_ERRORS)
def usage(
    by: str = Query("day,key", max_length=100, description="comma-separated: key, tenant, profile, day"),
    since: str | None = Query(None, description="first UTC day (YYYY-MM-DD), inclusive"),
    until: str | None = Query(None, description="last UTC day (YYYY-MM-DD), inclusive"),
    p: Principal = QUERY,
    svc: Service = SERVICE,
) -> Any:
    """Token and cost sums. An admin key sees every key's answers (a tenant's admin key: its tenant's);
    any other key only its own."""
    groups = [g.strip() for g in by.split(",") if g.strip()]
    admin = "admin" in p.scopes
    key_id = None if admin else p.key_id
    tenant = (False, None) if p.access.everything or not admin else (True, p.access.tenant)
    try:
        rows = svc.kb.components.usage.aggregate(groups, key_id, tenant, _day(since, "since"), _day(until, "until"))
    except GroundworkError as exc:
        raise user_error(exc) from None
    return rows
