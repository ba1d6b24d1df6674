"""Every protocol and the Python API document their members (shapes, units and errors live there)."""

from __future__ import annotations

import inspect

import pytest

from groundwork.answer import Generator
from groundwork.guard import Guardrails
from groundwork.index.embedder import Embedder
from groundwork.index.store import MigratableStore, Store
from groundwork.kb import KnowledgeBase
from groundwork.llm.chat import ChatModel, ToolChatModel
from groundwork.retrieve.decompose import Decomposer
from groundwork.retrieve.rerank import Reranker
from groundwork.state import AuditLog, JobQueue, KeyStore, MonitorStore, RateLimiter, ReviewQueue
from groundwork.state.protocols import PendingActions, UsageLog
from groundwork.wiring import Components

DOCUMENTED = [
    Store,
    MigratableStore,
    Embedder,
    Generator,
    ChatModel,
    ToolChatModel,
    Guardrails,
    Reranker,
    Decomposer,
    KeyStore,
    JobQueue,
    AuditLog,
    RateLimiter,
    ReviewQueue,
    MonitorStore,
    PendingActions,
    UsageLog,
    KnowledgeBase,
    Components,
]
TRIVIAL = {
    "close",
    "count_chunks",
    "list_versions",
    "list_documents",
    "record_version",
    "dimension",
    "filter_fields",
    "count_tokens",
}


def _public_members(cls: type) -> list[str]:
    own = {k for c in cls.__mro__ if c.__module__.startswith("groundwork") for k in vars(c)}
    return sorted(
        k
        for k in own
        if not k.startswith("_") and callable(getattr(cls, k, None)) or isinstance(getattr(cls, k, None), property)
    )


@pytest.mark.parametrize("cls", DOCUMENTED, ids=lambda c: c.__name__)
def test_protocols_and_the_api_have_docstrings(cls: type) -> None:
    assert inspect.getdoc(cls), f"{cls.__name__} has no docstring"
    missing = [m for m in _public_members(cls) if m not in TRIVIAL and not inspect.getdoc(getattr(cls, m))]
    assert missing == [], f"{cls.__name__}: members without a docstring: {missing}"
