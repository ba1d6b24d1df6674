"""Health, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import generate_latest

from groundwork.serve import schemas as S
from groundwork.serve.deps import SERVICE
from groundwork.serve.service import Service

router = APIRouter(tags=["ops"])


@router.get("/healthz", response_model=S.Health)
def healthz() -> dict:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", response_model=S.Ready, responses={503: {"model": S.Ready}})
def readyz(svc: Service = SERVICE) -> Any:
    """The model is loaded and the index is open (an empty knowledge base is ready too)."""
    model = svc.model_loaded
    body = {"status": "ready" if model else "starting", "index": svc.kb.store.exists, "model": model}
    return body if model else JSONResponse(body, status_code=503)


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(svc: Service = SERVICE) -> PlainTextResponse:
    """Prometheus text format: requests and latency per endpoint and stage, ingest, cache hits, answers."""
    text = generate_latest(svc.metrics.registry).decode()
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")
