"""Drift monitor runs (admin keys without a tenant: the figures cover every tenant's traffic)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from groundwork.serve.auth import Principal
from groundwork.serve.deps import ADMIN, SERVICE
from groundwork.serve.errors import AUTH_ERRORS, ERROR, ApiError
from groundwork.serve.service import Service

router = APIRouter(tags=["admin"])


@router.get("/v1/monitor", responses=AUTH_ERRORS | {403: ERROR})
def monitor_runs(limit: int = Query(50, ge=1, le=500), p: Principal = ADMIN, svc: Service = SERVICE) -> Any:
    """The newest monitor runs (newest first) and the monitor settings, for the Health page. 403 for
    a key of a tenant: a run's figures are measured over every tenant's answers."""
    if p.access.tenant is not None:
        raise ApiError(
            403, "forbidden", "monitor runs cover every tenant: only an admin key without a tenant reads them"
        )
    m = svc.settings.monitor
    return {
        "runs": svc.kb.components.monitor.list(limit),
        "settings": {"interval_s": m.interval_s, "psi_alert": m.psi_alert, "eval_drop": m.eval_drop},
    }
