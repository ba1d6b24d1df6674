"""Resolving a review (``POST /v1/reviews/{id}/resolve``): the reviewer's answer and documents become
an eval-set question (``groundwork.evaluate.reviewed``), and new knowledge becomes a document.

The new document is ingested like an upload, under a tenant and groups the reviewer's key may write:
its own tenant (only a key without a tenant, or --no-auth, chooses one) and a subset of its own groups.
Its id is ``review://<tenant>/<g1+g2>/<review id>.md`` (``~`` for no tenant), so it can only ever
replace itself, and every ingest records an index version as any other document does.
"""

from __future__ import annotations

from typing import Any

from groundwork.errors import GroundworkError
from groundwork.evaluate.reviewed import eval_row
from groundwork.ingest.sources import bytes_item
from groundwork.serve import schemas as S
from groundwork.serve.auth import Principal
from groundwork.serve.errors import ApiError, user_error
from groundwork.serve.service import Service
from groundwork.serve.uploads import check_groups
from groundwork.state.reviews import ReviewConflict, ReviewItem, ReviewNotFound
from groundwork.types import ACL_NAME, ACL_NAME_RULE


def review_uri(tenant: str | None, groups: list[str], review_id: str) -> str:
    """The document id of a review's new document (owner and review in the id, as ``upload_uri``)."""
    owner, scope = tenant or "~", "+".join(sorted(groups))
    return f"review://{owner}/{scope}/{review_id}.md" if scope else f"review://{owner}/{review_id}.md"


def open_item(svc: Service, review_id: str, p: Principal) -> ReviewItem:
    """The item if ``p`` may see it and it is open. Raises ApiError 404 / 409."""
    try:
        item = svc.kb.reviews.get(review_id, p.access)
    except ReviewNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    if item.status != "open":
        raise ApiError(409, "conflict", f"review {review_id} is already {item.status}")
    return item


def _document_acl(doc: S.NewDocument, p: Principal) -> tuple[str | None, list[str]]:
    """The tenant and groups of the new document, if ``p`` may write them. Raises ApiError 403 / 422."""
    tenant = doc.tenant if doc.tenant is not None else p.access.tenant
    if tenant is not None and not ACL_NAME.match(tenant):
        raise ApiError(422, "invalid_request", f"document.tenant: invalid name {tenant!r}: {ACL_NAME_RULE}")
    if not p.access.everything and tenant != p.access.tenant:
        raise ApiError(403, "forbidden", "document.tenant: this key may only write documents of its own tenant")
    bad = [g for g in doc.groups if not ACL_NAME.match(g)]
    if bad:
        raise ApiError(422, "invalid_request", f"document.groups: invalid group name {bad[0]!r}: {ACL_NAME_RULE}")
    check_groups(doc.groups, p.access)
    return tenant, sorted(set(doc.groups))


def _ingest(svc: Service, item: ReviewItem, doc: S.NewDocument, p: Principal) -> dict[str, Any]:
    tenant, groups = _document_acl(doc, p)
    uri = review_uri(tenant, groups, item.review_id)
    title = " ".join((doc.title or item.question).split())[:200] or "Reviewed answer"
    data = f"# {title}\n\n{doc.text.strip()}\n".encode()
    with svc.write_lock:
        try:
            report = svc.kb.ingest(
                [], items=[bytes_item(uri, data)], sync=False, tenant=tenant, allowed_groups=groups,
                trusted_metadata=False, replace_foreign=False,
            )  # fmt: skip
        except GroundworkError as exc:
            raise user_error(exc) from None
    if report.failed:
        raise ApiError(422, "invalid_request", f"document: could not be ingested: {report.failed[0].reason}")
    return {"doc_id": uri, "tenant": tenant, "groups": groups, "version": svc.kb.store.current_version()}


def resolve(svc: Service, review_id: str, req: S.ResolveIn, p: Principal) -> ReviewItem:
    """Resolve an open review: check the picked documents are visible to the reviewer, ingest the new
    document, record the resolution (with the eval question's id). Raises ApiError: 404 unknown or
    invisible item or document, 409 no longer open, 403 a tenant/groups the key may not write, 422
    nothing given or a document that cannot be ingested."""
    item = open_item(svc, review_id, p)
    if not (req.answer and req.answer.strip()) and not req.doc_ids and req.document is None:
        raise ApiError(422, "invalid_request", "write the correct answer, pick a document or write one (or dismiss)")
    visible = {d.doc_id for d in svc.kb.documents(p.access)}
    unknown = [d for d in req.doc_ids if d not in visible]
    if unknown:
        raise ApiError(404, "not_found", f"doc_ids: no document {unknown[0]}")
    document = _ingest(svc, item, req.document, p) if req.document is not None else None
    resolution = {
        "reviewer": p.name,
        "answer": (req.answer or "").strip(),
        "doc_ids": list(dict.fromkeys(req.doc_ids)),
        "document": document,
    }
    resolution["eval_question_id"] = eval_row(item)["id"]
    try:
        return svc.kb.reviews.finish(review_id, "resolved", resolution, p.access)
    except ReviewConflict as exc:  # another reviewer finished it meanwhile
        raise ApiError(409, "conflict", str(exc)) from None
