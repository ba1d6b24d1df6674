"""Index versions."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter

from groundwork.serve.auth import Principal
from groundwork.serve.deps import QUERY, SERVICE
from groundwork.serve.errors import AUTH_ERRORS
from groundwork.serve.service import Service
from groundwork.types import IndexVersion

router = APIRouter(tags=["documents"])


@router.get("/v1/versions", response_model=list[IndexVersion], responses=AUTH_ERRORS)
def versions(p: Principal = QUERY, svc: Service = SERVICE) -> Any:
    """Index versions. Changed document ids are listed only where the key may see them."""
    visible = None if p.access.everything else {d.doc_id for d in svc.kb.documents(p.access)}
    out = []
    for v in svc.kb.versions():
        d = asdict(v)
        if visible is not None:
            d["changed_doc_ids"] = [x for x in v.changed_doc_ids if x in visible]
        out.append(d)
    return out
