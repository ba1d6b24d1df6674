"""What a process needs to run agents: the declared actions, the pending-action store, the agent
(built on first use: it needs an LLM that calls tools) and escalation into the review queue."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from groundwork.agent.actions import Action, load_actions
from groundwork.agent.confirm import decide
from groundwork.agent.loop import ESCALATED_MESSAGE, Agent
from groundwork.agent.records import Caller, Escalation, TurnResult
from groundwork.kb import KnowledgeBase
from groundwork.state.pending import PendingAction
from groundwork.state.protocols import PendingActions
from groundwork.wiring import build_pending_actions


class AgentRuntime:
    """The agent parts of one knowledge base. Raises ConfigError for an invalid ``agent.actions_file``."""

    def __init__(self, kb: KnowledgeBase, pending: PendingActions) -> None:
        self.kb, self.pending = kb, pending
        self.actions: dict[str, Action] = load_actions(kb.settings.agent.actions_file)
        self._agent: Agent | None = None

    @classmethod
    def for_kb(cls, kb: KnowledgeBase) -> AgentRuntime:
        return cls(kb, build_pending_actions(kb.settings, kb.components))

    def agent(self) -> Agent:
        """The agent (built once). Raises GroundworkError when the configured LLM cannot call tools."""
        if self._agent is None:
            self._agent = Agent(self.kb, self.actions, self.pending, self.escalate)
        return self._agent

    def escalate(self, item: Escalation) -> str:
        """Open an ``escalation`` item in the review queue with the turn's evidence; its id."""
        groups = None if item.access.everything else sorted(item.access.groups)
        earlier = [f"{m.get('role')}: {m.get('content')}" for m in item.conversation[:-1] if m.get("content")]
        reason = item.reason + (f": {item.note}" if item.note else "")
        if earlier:
            reason += "\nconversation so far:\n" + "\n".join(earlier[-10:])
        redact = self.kb.components.guardrails.redact
        review = self.kb.reviews.open(
            "escalation",
            redact(item.question),
            ESCALATED_MESSAGE,
            item.evidence,
            item.answer_id,
            item.access.tenant,
            groups,
            redact(reason),
            item.caller,
        )
        return review.review_id

    def decide(self, item_id: str, who: Caller, confirm: bool) -> PendingAction:
        """Confirm or reject a pending action (``groundwork.agent.confirm.decide``)."""
        return decide(self.pending, self.actions, item_id, who, confirm, self.kb.settings.agent, self.kb.audit)

    @staticmethod
    def wire(result: TurnResult) -> dict[str, Any]:
        """The turn as JSON-able data (``groundwork agent --json``)."""
        return asdict(result)
