"""The reviewer's reply to an escalated agent turn, sent back to the person who asked.

An escalation is a review item of kind ``escalation`` (``groundwork.state.reviews``); a reviewer
resolves it with ``POST /v1/reviews/{id}/resolve`` (the answer becomes an eval-set question like any
resolved review). The asker reads the reply here with its own key: the item is visible under the audit
log's rule (same tenant, every group the asker had), so another tenant gets 404.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from groundwork.serve import schemas as S
from groundwork.serve.auth import Principal
from groundwork.serve.deps import QUERY, SERVICE
from groundwork.serve.errors import AUTH_ERRORS, ERROR, ApiError
from groundwork.serve.service import Service
from groundwork.state.reviews import ReviewNotFound

router = APIRouter(tags=["query"])


@router.get("/v1/escalations/{review_id}", response_model=S.EscalationOut, responses=AUTH_ERRORS | {404: ERROR})
def escalation(review_id: str, p: Principal = QUERY, svc: Service = SERVICE) -> Any:
    """The escalated question, its status (open, resolved, dismissed) and, once resolved, the
    reviewer's reply (``reply``; null until then)."""
    try:
        item = svc.kb.reviews.get(review_id, p.access)
    except ReviewNotFound:
        item = None
    if item is None or item.kind != "escalation":
        raise ApiError(404, "not_found", f"no escalation with id {review_id}")
    resolution = item.resolution or {}
    return {
        "review_id": item.review_id,
        "status": item.status,
        "question": item.question,
        "reply": resolution.get("answer") if item.status == "resolved" else None,
        "replied_at": item.resolved_at,
        "answer_id": item.answer_id,
    }
