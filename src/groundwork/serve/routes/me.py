"""The calling key."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from groundwork.serve import schemas as S
from groundwork.serve.auth import Principal
from groundwork.serve.deps import QUERY
from groundwork.serve.errors import AUTH_ERRORS

router = APIRouter(tags=["query"])


@router.get("/v1/me", response_model=S.Me, responses=AUTH_ERRORS)
def me(p: Principal = QUERY) -> Any:
    """The calling key: name, scopes, tenant and groups (what the web page shows and hides)."""
    return {
        "name": p.name,
        "scopes": list(p.scopes),
        "tenant": p.access.tenant,
        "groups": list(p.access.groups),
        "no_auth": p.access.everything,
    }
