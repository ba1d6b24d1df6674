"""Pending actions: side-effect actions the model proposed, waiting for a person (docs/agents.md).

A key sees the pending actions of its tenant that it could see the proposing turn of (the audit log's
rule). Confirming runs the action once (a second confirm, from any replica, gets 409) and needs the
scope the action requires; rejecting never runs it. Both are audited with the deciding key's name.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query

from groundwork.agent.confirm import ActionConflict, ActionForbidden, ActionNotFound
from groundwork.agent.records import Caller
from groundwork.serve import schemas as S
from groundwork.serve.auth import Principal
from groundwork.serve.deps import QUERY, SERVICE
from groundwork.serve.errors import AUTH_ERRORS, ERROR, ApiError
from groundwork.serve.service import Service

router = APIRouter(tags=["actions"])
Status = Literal["pending", "running", "done", "failed", "rejected", "all"]
_DECIDE = AUTH_ERRORS | {404: ERROR, 409: ERROR}


@router.get("/v1/actions/pending", response_model=list[S.PendingActionOut], responses=AUTH_ERRORS)
def pending_list(
    status: Status = Query("pending", description="only actions of this status; all: every status"),
    limit: int = Query(100, ge=1, le=500),
    p: Principal = QUERY,
    svc: Service = SERVICE,
) -> Any:
    """Proposed actions the key may see, newest first (by default only those waiting for a decision)."""
    return [a.to_dict() for a in svc.agents.pending.list(p.access, None if status == "all" else status, limit)]


@router.get("/v1/actions/pending/{item_id}", response_model=S.PendingActionOut, responses=AUTH_ERRORS | {404: ERROR})
def pending_get(item_id: str, p: Principal = QUERY, svc: Service = SERVICE) -> Any:
    """One proposed action with its status and, once run, its result."""
    item = svc.agents.pending.get(item_id, p.access)
    if item is None:
        raise ApiError(404, "not_found", f"no pending action with id {item_id}")
    return item.to_dict()


@router.post("/v1/actions/pending/{item_id}/confirm", response_model=S.PendingActionOut, responses=_DECIDE)
def pending_confirm(item_id: str, p: Principal = QUERY, svc: Service = SERVICE) -> Any:
    """Run the action now, once; the result (ok, status, output or error) is in the answer. An action's
    failure is reported there (status ``failed``), never as a 500."""
    return _decide(svc, p, item_id, True)


@router.post("/v1/actions/pending/{item_id}/reject", response_model=S.PendingActionOut, responses=_DECIDE)
def pending_reject(item_id: str, p: Principal = QUERY, svc: Service = SERVICE) -> Any:
    """Reject the action: it is never run."""
    return _decide(svc, p, item_id, False)


def _decide(svc: Service, p: Principal, item_id: str, confirm: bool) -> Any:
    try:
        return svc.agents.decide(item_id, Caller(p.name, p.scopes, p.access), confirm).to_dict()
    except ActionNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    except ActionForbidden as exc:
        raise ApiError(403, "forbidden", str(exc)) from None
    except ActionConflict as exc:
        raise ApiError(409, "conflict", str(exc)) from None
