"""Index versions."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter

from groundwork.serve import schemas as S
from groundwork.serve.auth import Principal
from groundwork.serve.deps import QUERY, SERVICE
from groundwork.serve.errors import AUTH_ERRORS
from groundwork.serve.service import Service
from groundwork.types import IndexVersion

router = APIRouter(tags=["documents"])


@router.get("/v1/versions", response_model=list[S.VersionOut], responses=AUTH_ERRORS)
def versions(p: Principal = QUERY, svc: Service = SERVICE) -> Any:
    """Index versions. A key that may see everything gets every version with its totals; a restricted
    key gets only the versions that changed a document it can see, with only those document ids, and
    no totals (they count every tenant's documents)."""
    if p.access.everything:
        return [asdict(v) for v in svc.kb.versions()]
    visible = {d.doc_id for d in svc.kb.documents(p.access)}
    return [_restricted(v, visible) for v in svc.kb.versions() if visible.intersection(v.changed_doc_ids)]


def _restricted(v: IndexVersion, visible: set[str]) -> dict[str, Any]:
    changed = [x for x in v.changed_doc_ids if x in visible]
    totals = dict.fromkeys(("added", "updated", "deleted", "documents", "chunks"))
    return {
        "version": v.version,
        "created_at": v.created_at,
        "storage_version": None,
        **totals,
        "changed_doc_ids": changed,
    }
