"""The HTTP API, one ``APIRouter`` per area; ``groundwork.serve.app`` includes them all."""

from groundwork.serve.routes import (
    actions,
    audit,
    chat,
    documents,
    escalations,
    evals,
    me,
    models,
    monitor,
    ops,
    query,
    reviews,
    usage,
    versions,
)

ROUTERS = [
    ops.router,
    query.router,
    chat.router,
    models.router,
    documents.router,
    versions.router,
    audit.router,
    me.router,
    evals.router,
    actions.router,
    escalations.router,
    reviews.router,
    monitor.router,
    usage.router,
]

__all__ = ["ROUTERS"]
