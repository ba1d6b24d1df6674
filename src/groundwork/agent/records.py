"""What an agent turn produces and records: the caller, the steps, the result, an escalation, and
the audit record of a turn or of a decided action (the audit log's shape with an ``agent`` field)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from groundwork.state import clock
from groundwork.types import Access


@dataclass(frozen=True)
class Caller:
    """Who runs the turn: the key's name (audit; never the key), its scopes and document access."""

    name: str
    scopes: tuple[str, ...]
    access: Access


@dataclass
class Escalation:
    """A turn handed to a person: why, the question, the conversation and the retrieved evidence."""

    reason: str
    question: str
    conversation: list[dict[str, Any]]
    evidence: list[dict[str, Any]]
    answer_id: str
    caller: str
    access: Access
    note: str = ""


@dataclass
class Step:
    """One recorded step of the loop (the audit record's ``agent.steps``)."""

    tool: str
    arguments: Any
    result_chars: int
    ms: float
    decision: str
    detail: str = ""


@dataclass
class TurnResult:
    """The outcome of one turn. ``finish_reason`` is ``stop`` or ``tool_calls`` (client tools to run);
    ``decision`` is answer | abstain | escalate | refuse | client_tools | budget."""

    answer_id: str
    content: str
    finish_reason: str
    decision: str
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    citations: list[dict[str, Any]] = field(default_factory=list)
    pending: list[dict[str, Any]] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    confidence: float | None = None
    review_id: str | None = None


def agent_record(
    answer_id: str, caller: Caller, question: str, answer: str, abstained: bool, agent: dict[str, Any]
) -> dict[str, Any]:
    """An audit record of an agent turn or a confirmed action, in the audit log's shape
    (``groundwork.state.audit.answer_record``) with the ``agent`` field added."""
    access = caller.access
    return {
        "access_groups": None if access.everything else sorted(access.groups),
        "answer_id": answer_id,
        "created_at": clock.now(),
        "caller": caller.name,
        "tenant": access.tenant,
        "question": question,
        "search_query": question,
        "sub_questions": [],
        "filter": None,
        "mode": "agent",
        "retrieved": [],
        "cited": [],
        "prompt": None,
        "model_id": agent.get("model_id", ""),
        "index_version": None,
        "guardrails": [],
        "abstained": abstained,
        "blocked": False,
        "flags": [],
        "invalid_citations": 0,
        "latency_ms": {},
        "answer": answer,
        "agent": agent,
    }
