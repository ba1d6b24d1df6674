"""The decision policy: what a model's proposal may do (settings ``agent.*``, docs/agents.md).

Every proposal of the model (answer, call a tool, call an action, escalate) passes here first. The
policy never guesses: an answer needs retrieval confidence of at least ``agent.min_confidence`` (the
best cosine similarity between a search of this turn and a retrieved chunk, ``SearchHit.relevance``),
otherwise the turn escalates or abstains (``agent.low_confidence``). Actions are offered only to keys
whose scopes include the action's ``scope`` (``admin`` includes every scope).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from groundwork.agent.actions import Action
from groundwork.config import AgentSettings
from groundwork.types import GuardDecision


def allowed(action: Action, scopes: Sequence[str]) -> bool:
    """Whether a key with ``scopes`` may call ``action``."""
    return action.scope in scopes or "admin" in scopes


def allowed_actions(actions: dict[str, Action], scopes: Sequence[str]) -> dict[str, Action]:
    """The actions a key with ``scopes`` is offered."""
    return {name: a for name, a in actions.items() if allowed(a, scopes)}


def answer_decision(confidence: float | None, settings: AgentSettings) -> str:
    """``answer`` when ``confidence`` reaches ``agent.min_confidence``, else ``escalate`` or ``abstain``
    (``agent.low_confidence``). None (nothing retrieved) counts as no confidence."""
    if confidence is not None and confidence >= settings.min_confidence:
        return "answer"
    return settings.low_confidence


def question_decision(decisions: Sequence[GuardDecision], settings: AgentSettings) -> str | None:
    """``escalate`` for a question on a denied topic (``agent.escalate_denied_topics``), ``refuse`` for
    another blocked question, None to go on."""
    if settings.escalate_denied_topics and any(d.guard == "denied_topic" for d in decisions):
        return "escalate"
    if any(d.action == "blocked" for d in decisions):
        return "refuse"
    return None


@dataclass
class Budget:
    """The loop's bounds for one turn: steps, completion tokens and wall time (``agent.max_*``)."""

    settings: AgentSettings
    started: float = field(default_factory=time.perf_counter)
    steps: int = 0
    tokens: int = 0

    def exceeded(self) -> str | None:
        """The name of the first bound reached, or None."""
        s = self.settings
        if self.steps >= s.max_steps:
            return "max_steps"
        if self.tokens >= s.max_tokens:
            return "max_tokens"
        if time.perf_counter() - self.started >= s.max_seconds:
            return "max_seconds"
        return None

    def tokens_left(self, per_call: int) -> int:
        return max(1, min(per_call, self.settings.max_tokens - self.tokens))
