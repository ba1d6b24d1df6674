"""The audit log of answers (admin scope)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from groundwork.serve import schemas as S
from groundwork.serve.auth import Principal
from groundwork.serve.deps import ADMIN, SERVICE
from groundwork.serve.errors import AUTH_ERRORS, ERROR, ApiError
from groundwork.serve.service import Service
from groundwork.state.audit import AuditNotFound

router = APIRouter(tags=["admin"])


@router.get("/v1/audit", response_model=list[S.AuditRecord], responses=AUTH_ERRORS)
def audit_list(
    limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0), p: Principal = ADMIN, svc: Service = SERVICE
) -> Any:
    """Recent answers, newest first (an admin key of a tenant sees only that tenant's)."""
    return svc.kb.audit.list(limit, offset, p.access)


@router.get("/v1/audit/{answer_id}", response_model=S.AuditRecord, responses=AUTH_ERRORS | {404: ERROR})
def audit_get(answer_id: str, p: Principal = ADMIN, svc: Service = SERVICE) -> Any:
    """One audit record with its feedback."""
    try:
        return svc.kb.audit.get(answer_id, p.access)
    except AuditNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from None
