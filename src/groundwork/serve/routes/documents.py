"""Documents and ingest jobs: upload, job progress, list, read, delete, re-sync."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, Request

from groundwork.serve import schemas as S
from groundwork.serve.auth import Principal
from groundwork.serve.deps import ADMIN, INGEST, QUERY, SERVICE
from groundwork.serve.errors import AUTH_ERRORS, ERROR, ApiError
from groundwork.serve.service import Service
from groundwork.serve.uploads import UPLOAD_BODY, check_groups, read_upload
from groundwork.types import Access, DocumentInfo, document_label

router = APIRouter(tags=["documents"])


@router.post(
    "/v1/documents",
    status_code=202,
    response_model=S.JobAccepted,
    responses=AUTH_ERRORS | {413: ERROR, 415: ERROR},
    openapi_extra=UPLOAD_BODY,
)
async def upload(request: Request, p: Principal = INGEST, svc: Service = SERVICE) -> Any:
    """Accept files (multipart) or JSON records; returns a job id at once (the worker ingests).

    The upload is stored durably before this returns, so a server restart does not lose it.
    Documents get the key's tenant, and the given allowed_groups."""
    up = await read_upload(request)
    check_groups(up.groups, p.access)
    access = p.access if not p.access.everything else Access()
    job = svc.jobs.submit(up.files, p.name, access, up.groups, up.options, creator=p.key_id)
    return {"job_id": job.job_id, "status": job.status, "files": job.files}


@router.get("/v1/jobs/{job_id}", response_model=S.JobOut, responses=AUTH_ERRORS | {404: ERROR})
def get_job(job_id: str, p: Principal = INGEST, svc: Service = SERVICE) -> Any:
    """Progress (done of total files) and per-file results."""
    job = svc.jobs.get(job_id, p.access, p.key_id)
    if job is None:
        raise ApiError(404, "not_found", f"no job {job_id}")
    return job.to_dict()


def _file_type(source: str) -> str:
    return Path(source).suffix.lstrip(".").lower() or "text"


def _doc_out(d: DocumentInfo) -> dict:
    return {
        "doc_id": d.doc_id,
        "source": d.source,
        "label": document_label(d.doc_id, d.source, d.title),
        "title": d.title,
        "chunks": d.chunks,
        "chars": d.chars,
        "type": _file_type(d.source),
        "tenant": d.tenant,
        "allowed_groups": d.allowed_groups,
        "ingested_at": d.ingested_at,
        "content_hash": d.content_hash,
        "parse": d.parse,
    }


@router.get("/v1/documents", response_model=S.DocumentPage, responses=AUTH_ERRORS)
def list_documents(
    offset: int = Query(0, ge=0),
    limit: int = Query(50, ge=1, le=500),
    q: str | None = Query(None, max_length=200, description="substring of the source or title"),
    type: str | None = Query(None, max_length=20, description="file type, e.g. pdf"),  # noqa: A002 - the API's name
    p: Principal = QUERY,
    svc: Service = SERVICE,
) -> Any:
    """The documents the key may see, paged, optionally filtered by name and type."""
    docs = svc.kb.documents(p.access)
    if q:
        docs = [d for d in docs if q.lower() in d.source.lower() or q.lower() in d.title.lower()]
    if type:
        docs = [d for d in docs if _file_type(d.source) == type.lower()]
    items = [_doc_out(d) for d in docs[offset : offset + limit]]
    return {"items": items, "total": len(docs), "offset": offset, "limit": limit}


def _visible_doc(svc: Service, doc_id: str, p: Principal) -> DocumentInfo:
    for d in svc.kb.documents(p.access):
        if d.doc_id == doc_id:
            return d
    raise ApiError(404, "not_found", f"no document {doc_id}")


@router.get("/v1/documents/{doc_id:path}", response_model=S.DocumentDetail, responses=AUTH_ERRORS | {404: ERROR})
def get_document(doc_id: str, p: Principal = QUERY, svc: Service = SERVICE) -> Any:
    """One document and its chunks in order."""
    d = _visible_doc(svc, doc_id, p)
    chunks = [
        {"chunk_id": c.chunk_id, "position": c.position, "heading": c.heading, "page": c.page, "text": c.text}
        for c in svc.kb.document_chunks(doc_id, p.access)
    ]
    return _doc_out(d) | {"chunk_list": chunks}


@router.delete("/v1/documents/{doc_id:path}", response_model=S.Deleted, responses=AUTH_ERRORS | {404: ERROR})
def delete_document(doc_id: str, p: Principal = INGEST, svc: Service = SERVICE) -> Any:
    """Remove a document from the index (a new index version)."""
    _visible_doc(svc, doc_id, p)
    with svc.write_lock:
        svc.kb.delete([doc_id], p.access)
    return {"doc_id": doc_id, "deleted": True, "version": svc.kb.store.current_version()}


@router.post("/v1/sync", status_code=202, response_model=S.JobAccepted, responses=AUTH_ERRORS | {409: ERROR})
def sync(p: Principal = ADMIN, svc: Service = SERVICE) -> Any:
    """Re-sync the configured sources (serve.sync_paths and serve.sources) as a background job; 409
    when none is configured."""
    if not svc.sync_sources:
        raise ApiError(
            409, "nothing_to_sync", "no sources to sync: set serve.sources or serve.sync_paths (groundwork.toml)"
        )
    job = svc.jobs.submit({}, p.name, Access(), [], kind="sync", creator=p.key_id)
    return {"job_id": job.job_id, "status": job.status, "files": svc.sync_sources}


@router.get("/v1/syncs", response_model=list[S.JobOut], responses=AUTH_ERRORS)
def syncs(limit: int = Query(20, ge=1, le=100), p: Principal = ADMIN, svc: Service = SERVICE) -> Any:
    """The latest sync jobs (scheduled every serve.sync_interval_s, or asked by POST /v1/sync), newest
    first, each with its summary: documents added, updated, unchanged, deleted and failed."""
    return [j.to_dict() for j in svc.jobs.recent("sync", limit)]
