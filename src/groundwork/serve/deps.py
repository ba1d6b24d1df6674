"""Route dependencies: the service of the app, and the caller's key checked for a scope.

``QUERY``, ``INGEST`` and ``ADMIN`` are declared once here and used as the ``Principal`` parameter of
every route, so a route's scope is visible in its signature.
"""

from __future__ import annotations

from fastapi import Depends, Request

from groundwork.serve.auth import Principal, authenticate
from groundwork.serve.errors import ApiError
from groundwork.serve.service import Service


def service(request: Request) -> Service:
    """The Service of the app handling ``request``."""
    return request.app.state.service


def _require(scope: str):
    def dependency(request: Request) -> Principal:
        svc = service(request)
        p = authenticate(request.headers.get("authorization"), svc.keys, svc.no_auth)
        if p is None:
            raise ApiError(401, "unauthorized", "missing or invalid API key; send Authorization: Bearer <key>")
        if scope not in p.scopes and "admin" not in p.scopes:
            raise ApiError(403, "forbidden", f"this key lacks the '{scope}' scope")
        wait = svc.limiter.take(p.key_id)
        if wait > 0:
            headers = {"Retry-After": str(max(1, round(wait)))}
            raise ApiError(429, "rate_limited", "too many requests for this key", headers)
        return p

    return dependency


QUERY = Depends(_require("query"))
INGEST = Depends(_require("ingest"))
ADMIN = Depends(_require("admin"))
SERVICE = Depends(service)


def check_top_k(svc: Service, value: int | None) -> int | None:
    """``value`` unless it exceeds ``serve.max_top_k`` (then a 422)."""
    if value is not None and value > svc.settings.serve.max_top_k:
        raise ApiError(422, "invalid_request", f"top_k: at most {svc.settings.serve.max_top_k} (serve.max_top_k)")
    return value
