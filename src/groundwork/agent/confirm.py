"""A person's decision on a pending action: confirm (run it once) or reject (never run it).

``decide`` claims the action atomically (``PendingActions.claim``): of two confirmations at once, in
one process or two, one wins and runs the action; the other gets ``ActionConflict``. The run's result
and who confirmed are stored with the pending action and written to the audit log.
"""

from __future__ import annotations

from typing import Any

from groundwork.agent.actions import Action, run_action, validate_arguments
from groundwork.agent.policy import allowed
from groundwork.agent.records import Caller, agent_record
from groundwork.config import AgentSettings
from groundwork.errors import GroundworkError
from groundwork.state.pending import PendingAction
from groundwork.state.protocols import AuditLog, PendingActions


class ActionNotFound(GroundworkError):
    """No pending action has this id (or the caller may not see it)."""


class ActionForbidden(GroundworkError):
    """The caller's key lacks the scope the action requires."""


class ActionConflict(GroundworkError):
    """The action was already confirmed or rejected; ``item`` is its current state."""

    def __init__(self, message: str, item: PendingAction) -> None:
        super().__init__(message)
        self.item = item


def decide(
    store: PendingActions,
    actions: dict[str, Action],
    item_id: str,
    who: Caller,
    confirm: bool,
    settings: AgentSettings,
    audit: AuditLog | None = None,
) -> PendingAction:
    """Confirm (run) or reject the pending action ``item_id`` as ``who``; returns its final state.
    Raises ActionNotFound, ActionForbidden (scope) or ActionConflict (decided already)."""
    item = store.get(item_id, who.access)
    if item is None:
        raise ActionNotFound(f"no pending action with id {item_id}")
    action = actions.get(item.action)
    if action is None and confirm:
        raise ActionForbidden(f"the action {item.action!r} is no longer declared in agent.actions_file")
    if action is not None and not allowed(action, who.scopes):
        raise ActionForbidden(f"this key lacks the '{action.scope}' scope that {action.name} requires")
    problem = validate_arguments(action, item.arguments) if action is not None and confirm else None
    if problem is not None:  # the declaration changed since the proposal: never run on stale arguments
        raise ActionForbidden(f"the arguments no longer match {item.action}'s schema ({problem}); reject it")
    if not store.claim(item_id, "running" if confirm else "rejected", who.name):
        current = store.get(item_id, who.access) or item
        raise ActionConflict(f"the action was already {current.status} by {current.decided_by}", current)
    result: dict[str, Any] | None = None
    if confirm and action is not None:
        outcome = run_action(action, item.arguments, settings)
        result = outcome.to_dict()
        store.finish(item_id, outcome.ok, result)
    final = store.get(item_id, who.access) or item
    if audit is not None:
        _audit(audit, final, who, result)
    return final


def _audit(audit: AuditLog, item: PendingAction, who: Caller, result: dict[str, Any] | None) -> None:
    verb = "confirmed" if item.status in ("running", "done", "failed") else "rejected"
    agent = {
        "decision": verb,
        "action": item.action,
        "arguments": item.arguments,
        "pending_id": item.id,
        "proposed_by": item.caller,
        "proposed_in": item.answer_id,
        "decided_by": who.name,
        "result": result,
        "steps": [],
    }
    text = f"{verb} by {who.name}" + (f": {'ok' if result.get('ok') else 'failed'}" if result else "")
    audit.write(agent_record(f"action-{item.id}", who, f"action {item.action}", text, False, agent))
