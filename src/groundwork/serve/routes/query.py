"""Search, answers and feedback on answers."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter

from groundwork.errors import GroundworkError
from groundwork.filters import parse_filter
from groundwork.serve import schemas as S
from groundwork.serve.auth import Principal
from groundwork.serve.deps import QUERY, SERVICE, check_top_k
from groundwork.serve.errors import AUTH_ERRORS, ERROR, ApiError, user_error
from groundwork.serve.service import Service
from groundwork.serve.telemetry import record_pipeline
from groundwork.state.audit import AuditNotFound
from groundwork.state.reviews import open_for_record
from groundwork.types import Answer

router = APIRouter(tags=["query"])


@router.post("/v1/search", response_model=list[S.Hit] | list[S.DocumentHit], responses=AUTH_ERRORS | {409: ERROR})
def search(req: S.SearchRequest, p: Principal = QUERY, svc: Service = SERVICE) -> Any:
    """Ranked chunks, or with ``group_by: "document"`` ranked distinct documents with their best passages,
    the same as `groundwork search --json`, among the documents the key may see."""
    t0 = time.time_ns()
    check_filter(req.filter)
    by_document = (req.group_by or svc.kb.settings.retrieval.group_by) == "document"
    run = svc.kb.search_documents if by_document else svc.kb.search
    with svc.gate.slot(p.access.tenant) as ok:
        if not ok:
            raise busy(p)
        try:
            results = run(req.query, req.mode, check_top_k(svc, req.top_k), req.filter, access=p.access)
        except GroundworkError as exc:
            raise user_error(exc) from None
    timings = {"total": (time.time_ns() - t0) / 1e6}
    record_pipeline(svc.tracer, "groundwork.search", t0, timings, {"groundwork.hits": len(results)})
    return [r.to_dict() for r in results]


def answer_question(
    svc: Service,
    p: Principal,
    question: str,
    mode: str | None,
    top_k: int | None,
    flt: str | None,
    history: list[dict] | None = None,
    on_token: Any = None,
) -> Answer:
    """``KnowledgeBase.ask`` for the caller ``p`` (its access, its name in the audit), with metrics and a trace.
    Raises ApiError 429 when the caller's tenant used its daily token quota."""
    t0 = time.time_ns()
    check_filter(flt)
    check_quota(svc, p)
    with svc.gate.slot(p.access.tenant) as ok:
        if not ok:
            raise busy(p)
        ans = _ask(svc, p, question, mode, top_k, flt, history, on_token)
    svc.metrics.observe_answer(ans)
    attrs = {"groundwork.answer_id": ans.answer_id, "groundwork.abstained": ans.abstained}
    record_pipeline(svc.tracer, "groundwork.answer", t0, ans.timings_ms, attrs)
    return ans


def check_quota(svc: Service, p: Principal) -> None:
    """429 ``quota_exceeded`` (naming the limit and when it resets) when the caller's tenant used its
    daily token quota; checked before anything is retrieved or generated."""
    try:
        svc.kb.check_quota(p.access)
    except GroundworkError as exc:
        raise user_error(exc) from None


def check_filter(flt: str | None) -> None:
    """422 for a filter the grammar refuses, before the request takes one of its tenant's slots.

    Parsing is bounded by the grammar's limits (characters, depth, terms), so a hostile filter is
    always told what is wrong with it, never 429 because other hostile filters hold the slots.
    """
    try:
        parse_filter(flt)
    except GroundworkError as exc:
        raise user_error(exc) from None


def busy(p: Principal) -> ApiError:
    """429 for a tenant that already runs ``serve.tenant_concurrency`` requests in this process."""
    return ApiError(
        429, "busy", "too many searches or answers of this tenant are running; retry shortly", {"Retry-After": "1"}
    )


def _ask(
    svc: Service,
    p: Principal,
    question: str,
    mode: str | None,
    top_k: int | None,
    flt: str | None,
    history: list[dict] | None,
    on_token: Any,
) -> Answer:
    try:
        return svc.kb.ask(
            question,
            mode,
            check_top_k(svc, top_k),
            flt,
            history=history,
            on_token=on_token,
            caller=p.name,
            access=p.access,
            key_id=p.key_id,
        )
    except GroundworkError as exc:
        raise user_error(exc) from None


@router.post("/v1/answer", response_model=S.AnswerOut, responses=AUTH_ERRORS | {409: ERROR})
def answer(req: S.AnswerRequest, p: Principal = QUERY, svc: Service = SERVICE) -> Any:
    """A cited answer (or an abstention), the same as `groundwork ask --json`, with its answer_id."""
    return answer_question(svc, p, req.question, req.mode, req.top_k, req.filter).to_dict()


@router.post("/v1/feedback", response_model=S.FeedbackOut, responses=AUTH_ERRORS | {404: ERROR})
def feedback(req: S.FeedbackIn, p: Principal = QUERY, svc: Service = SERVICE) -> Any:
    """Thumbs up/down and an optional comment on an answer (stored with its audit record). "down"
    opens a review item for an admin (``review.not_helpful``), or adds the comment to the open one."""
    try:
        record = svc.kb.audit.get(req.answer_id, p.access)
        svc.kb.audit.add_feedback(req.answer_id, req.rating, req.comment, p.name)
    except AuditNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    if req.rating == "down" and svc.settings.review.not_helpful:
        reason = svc.kb.components.guardrails.redact(req.comment) if req.comment else "marked not helpful"
        open_for_record(svc.kb.reviews, record, "not_helpful", reason)  # PII masked, as the record's texts are
    return {"answer_id": req.answer_id, "recorded": True}
