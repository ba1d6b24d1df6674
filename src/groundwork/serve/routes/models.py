"""``GET /v1/models``: OpenAI's model list, so clients that list models before they chat (Open WebUI
and other OpenAI-compatible front ends) find the one model ``POST /v1/chat/completions`` serves.

The list has one entry, ``groundwork``: the knowledge base answered by the server's configured
generator. Chat echoes whichever ``model`` a client sends, so the id names the service, not an LLM.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter

from groundwork.serve import schemas as S
from groundwork.serve.auth import Principal
from groundwork.serve.deps import QUERY, SERVICE
from groundwork.serve.errors import AUTH_ERRORS
from groundwork.serve.service import Service

router = APIRouter(tags=["query"])

MODEL_ID = "groundwork"


@router.get("/v1/models", response_model=S.ModelList, responses=AUTH_ERRORS)
def list_models(p: Principal = QUERY, svc: Service = SERVICE) -> Any:
    """OpenAI's model list shape: ``{"object": "list", "data": [{"id", "object": "model", "created",
    "owned_by"}]}``. ``created`` is the Unix time (seconds) of the knowledge base's first index
    version, the same on every replica and after restarts; 0 before the first ingest."""
    return {
        "object": "list",
        "data": [{"id": MODEL_ID, "object": "model", "created": _created(svc), "owned_by": "groundwork"}],
    }


def _created(svc: Service) -> int:
    versions = svc.kb.versions()
    return int(datetime.fromisoformat(versions[0].created_at).timestamp()) if versions else 0
