"""Evaluation results for the web page's Evaluation tab."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter

from groundwork.serve import schemas as S
from groundwork.serve.auth import Principal
from groundwork.serve.deps import QUERY, SERVICE
from groundwork.serve.errors import AUTH_ERRORS
from groundwork.serve.service import Service

router = APIRouter(tags=["query"])
_METRICS = ("ndcg@10", "hits@10", "containment")


def _has_metrics(data: Any) -> bool:
    return isinstance(data, dict) and any(k in data for k in _METRICS)


def eval_result(path: Path) -> dict[str, Any] | None:
    """One ``groundwork eval ... --json`` file as shown on the page: a single run (a dict of figures)
    or a comparison (a dict of runs); None for any other file."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    compare = bool(data) and all(_has_metrics(v) for v in data.values())
    if not (compare or _has_metrics(data)):
        return None
    modified = datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(timespec="seconds")
    results = data if compare else {path.stem: data}
    return {"name": path.name, "modified": modified, "kind": "compare" if compare else "single", "results": results}


@router.get("/v1/eval", response_model=list[S.EvalResult], responses=AUTH_ERRORS)
def eval_results(p: Principal = QUERY, svc: Service = SERVICE) -> Any:
    """The latest `groundwork eval` / `eval compare` JSON results in serve.eval_dir, newest first."""
    folder = svc.settings.serve.eval_dir
    if folder is None or not Path(folder).is_dir():
        return []
    files = sorted(Path(folder).glob("*.json"), key=lambda f: f.stat().st_mtime, reverse=True)[:20]
    return [r for r in (eval_result(f) for f in files) if r is not None]
