"""The HTTP API, one ``APIRouter`` per area; ``groundwork.serve.app`` includes them all."""

from groundwork.serve.routes import audit, chat, documents, evals, experiments, me, models, ops, query, versions

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
    experiments.router,
]

__all__ = ["ROUTERS"]
