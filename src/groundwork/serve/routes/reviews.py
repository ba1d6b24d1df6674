"""The review queue (admin scope): list, show, resolve, dismiss. See docs/operations.md, "Feedback review"."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from groundwork.serve import schemas as S
from groundwork.serve.auth import Principal
from groundwork.serve.deps import ADMIN, SERVICE
from groundwork.serve.errors import AUTH_ERRORS, ERROR, ApiError
from groundwork.serve.reviewing import open_item, resolve
from groundwork.serve.service import Service
from groundwork.state.reviews import ReviewConflict, ReviewNotFound

router = APIRouter(tags=["admin"])


@router.get("/v1/reviews", response_model=list[S.ReviewOut], responses=AUTH_ERRORS)
def reviews_list(
    status: str | None = Query("open", pattern="^(open|resolved|dismissed|all)$"),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0),
    p: Principal = ADMIN,
    svc: Service = SERVICE,
) -> Any:
    """Review items of ``status`` (``all`` for every one), newest first; only items whose asker saw
    nothing this key may not see."""
    items = svc.kb.reviews.list(None if status == "all" else status, limit, offset, p.access)
    return [i.to_dict() for i in items]


@router.get("/v1/reviews/{review_id}", response_model=S.ReviewOut, responses=AUTH_ERRORS | {404: ERROR})
def reviews_get(review_id: str, p: Principal = ADMIN, svc: Service = SERVICE) -> Any:
    """One review item."""
    try:
        return svc.kb.reviews.get(review_id, p.access).to_dict()
    except ReviewNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from None


@router.post(
    "/v1/reviews/{review_id}/resolve",
    response_model=S.ReviewOut,
    responses=AUTH_ERRORS | {404: ERROR, 409: ERROR},
)
def reviews_resolve(review_id: str, req: S.ResolveIn, p: Principal = ADMIN, svc: Service = SERVICE) -> Any:
    """Resolve: the correct answer and/or the right documents, and optionally new knowledge as a document
    (under the key's tenant and a subset of its groups). The item becomes an eval-set question."""
    return resolve(svc, review_id, req, p).to_dict()


@router.post(
    "/v1/reviews/{review_id}/dismiss",
    response_model=S.ReviewOut,
    responses=AUTH_ERRORS | {404: ERROR, 409: ERROR},
)
def reviews_dismiss(review_id: str, req: S.DismissIn, p: Principal = ADMIN, svc: Service = SERVICE) -> Any:
    """Close an item without a correction (it does not enter the eval set)."""
    open_item(svc, review_id, p)
    try:
        item = svc.kb.reviews.finish(review_id, "dismissed", {"reviewer": p.name, "reason": req.reason}, p.access)
    except ReviewConflict as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    return item.to_dict()
