"""The HTTP API: ``create_app(settings)`` builds the FastAPI app that ``groundwork serve`` runs.

Every route needs a key (``Authorization: Bearer gw_...``) with the route's scope (query, ingest,
admin) unless the app runs with ``no_auth`` (development, loopback only). Every read is limited to
the documents the key may see: the key's tenant and groups become an ``Access`` that the store puts
in each query's WHERE clause. Errors are ``{"error": {"code", "message"}}``, never a stack trace.
The routes live in ``groundwork.serve.routes``, one router per area.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from groundwork.config import Settings
from groundwork.serve.errors import ApiError, error_response
from groundwork.serve.limits import BodyLimit, BodyTooLarge
from groundwork.serve.mcp import McpEndpoint
from groundwork.serve.routes import ROUTERS
from groundwork.serve.service import Service
from groundwork.serve.telemetry import request_id

log = logging.getLogger("groundwork.serve")


def create_app(settings: Settings, no_auth: bool = False, span_exporter: Any = None) -> FastAPI:
    """The app: routers, error handlers, the request middleware and the web page at ``/``.
    Raises ConfigError / StoreError when the knowledge base or its state cannot be opened."""
    svc = Service(settings, no_auth, span_exporter)
    mcp = McpEndpoint(svc)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The process's worker pool for blocking routes (searches, answers): bounded and documented.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.serve.threads
        svc.start()
        async with mcp.running():
            yield
        svc.stop()

    app = FastAPI(
        title="Groundwork",
        version="1",
        lifespan=lifespan,
        description="Answers grounded in your own documents: search, cited answers, an OpenAI-compatible chat endpoint.",
    )
    app.state.service = svc
    _add_error_handlers(app)
    app.middleware("http")(_observe)
    app.add_middleware(BodyLimit, limit_bytes=int(settings.serve.max_upload_mb * 1024 * 1024))  # outermost
    for router in ROUTERS:
        app.include_router(router)
    app.add_route("/mcp", mcp, methods=["GET", "POST", "DELETE"], include_in_schema=False)  # MCP, streamable HTTP
    app.mount("/", StaticFiles(directory=Path(__file__).parent / "web", html=True), name="web")
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(BodyTooLarge)
    async def too_large(request: Request, exc: BodyTooLarge) -> JSONResponse:
        limit_mb = exc.limit_bytes / 1024 / 1024
        return error_response(413, "too_large", f"request body over {limit_mb:g} MB (serve.max_upload_mb)")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", []) if p != "body")
        return error_response(
            422, "invalid_request", f"{where}: {first.get('msg')}" if where else str(first.get("msg"))
        )

    @app.exception_handler(StarletteHTTPException)
    async def http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}
        return error_response(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail))

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error_response(500, "internal", f"internal error (request id {request_id.get()}); see the server log")


async def _observe(request: Request, call_next: Any) -> Response:
    """Request id, metrics and one JSON log line per request."""
    svc: Service = request.app.state.service
    rid = request.headers.get("x-request-id") or uuid.uuid4().hex[:16]
    token = request_id.set(rid)
    t0 = time.perf_counter()
    try:
        response: Response = await call_next(request)
    except Exception:  # reached only when a handler itself fails
        log.exception("unhandled error")
        response = error_response(500, "internal", f"internal error (request id {rid})")
    endpoint = getattr(request.scope.get("route"), "path", "unmatched")
    svc.metrics.requests.labels(endpoint, request.method, str(response.status_code)).inc()
    svc.metrics.latency.labels(endpoint).observe(time.perf_counter() - t0)
    response.headers["X-Request-ID"] = rid
    # The web page may not be framed by another site (clickjacking); no content-type sniffing.
    response.headers.setdefault("Content-Security-Policy", "frame-ancestors 'none'")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    ms = round((time.perf_counter() - t0) * 1000, 1)
    log.info("request", extra={"method": request.method, "path": endpoint, "status": response.status_code, "ms": ms})
    request_id.reset(token)
    return response
