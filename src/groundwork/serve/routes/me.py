"""The calling key."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from groundwork.serve import schemas as S
from groundwork.serve.auth import Principal
from groundwork.serve.deps import QUERY, SERVICE
from groundwork.serve.errors import AUTH_ERRORS
from groundwork.serve.service import Service

router = APIRouter(tags=["query"])


@router.get("/v1/me", response_model=S.Me, responses=AUTH_ERRORS)
def me(p: Principal = QUERY, svc: Service = SERVICE) -> Any:
    """The calling key: name, scopes, tenant and groups (what the web page shows and hides); whether
    the server runs without keys, and (admin keys only) whether there are folders to re-sync."""
    return {
        "name": p.name,
        "scopes": list(p.scopes),
        "tenant": p.access.tenant,
        "groups": list(p.access.groups),
        "no_auth": p.access.everything,
        "sync_configured": "admin" in p.scopes and bool(svc.sync_sources),
    }
