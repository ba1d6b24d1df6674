"""The agent loop: the model decides, the policy (``groundwork.agent.policy``) disposes.

One turn: screen the question (a denied topic escalates, another blocked question is refused) ->
up to ``agent.max_steps`` model calls, each offered ``search_knowledge_base`` (run here under the
caller's access), the actions the key's scopes allow, ``escalate_to_human`` and the client's own tools.
A proposal is checked before anything runs: more than ``agent.max_tool_calls`` calls in one step are
refused; an action's arguments are validated against its JSON Schema; a side-effect action with
``confirm = true`` becomes a pending action (``groundwork.state.pending``) and is not run; a call of
a client tool ends the turn with ``finish_reason = "tool_calls"`` (the client runs it). A text answer
is given only with retrieval confidence of at least ``agent.min_confidence`` (if the model did not
search, the question is searched first); below it the turn escalates or abstains. Every step is
recorded (tool, arguments, result size in characters, latency in ms, decision) in the turn's audit
record (``agent`` field). The loop is ReAct-style tool use (Yao et al., 2023, "ReAct: Synergizing
Reasoning and Acting in Language Models", ICLR) over OpenAI's function-calling schema.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import jsonschema

from groundwork.agent import policy
from groundwork.agent.actions import Action, ActionResult, run_action, validate_arguments
from groundwork.agent.records import Caller, Escalation, Step, TurnResult, agent_record
from groundwork.agent.tools import ESCALATE, ESCALATE_TOOL, SEARCH, SEARCH_TOOL, Evidence, search_tool
from groundwork.answer.extractive import ABSTAIN_MESSAGE
from groundwork.errors import GeneratorError, GroundworkError, RequestError
from groundwork.guard import REFUSAL
from groundwork.kb import KnowledgeBase
from groundwork.llm.chat import ToolCall, ToolChatModel
from groundwork.llm.prompts import load_prompt
from groundwork.state.pending import PendingAction
from groundwork.state.protocols import PendingActions
from groundwork.types import Citation, to_wire

ESCALATED_MESSAGE = (
    "I can't answer this reliably from the knowledge base, so I have passed your question to a person. "
    "You will get their reply here."
)
_CITE = re.compile(r"\[(\d{1,3})\]")


EscalateFn = Callable[[Escalation], str]  # stores an escalation, returns its review-queue id


class Agent:
    """Runs turns (see the module docstring). ``actions`` are the declared ones; ``pending`` stores
    actions waiting for a person; ``escalate`` puts a turn in the review queue."""

    def __init__(
        self,
        kb: KnowledgeBase,
        actions: dict[str, Action],
        pending: PendingActions,
        escalate: EscalateFn,
        chat: ToolChatModel | None = None,
    ) -> None:
        self.kb, self.actions, self.pending, self.escalate_fn = kb, actions, pending, escalate
        self.settings = kb.settings.agent
        model = chat if chat is not None else kb.components.chat_model
        if not isinstance(model, ToolChatModel):
            raise GroundworkError(
                "agent mode needs an LLM that calls tools: set generator.backend = 'openai' (any OpenAI-compatible server)"
            )
        self.chat = model

    def run(
        self,
        messages: Sequence[dict[str, Any]],
        caller: Caller,
        client_tools: Sequence[dict[str, Any]] = (),
        tool_choice: Any = None,
        builtin: bool = True,
    ) -> TurnResult:
        """One turn for ``messages`` (OpenAI chat messages; the last user message is the question).
        ``builtin`` offers search_knowledge_base, the actions and escalate_to_human (agent mode).
        Raises RequestError for messages without a user question; never raises for an action's failure."""
        turn = _Turn(self, caller, list(messages), list(client_tools), builtin)
        try:
            result = turn.run(tool_choice)
        except _Escalate as exc:  # the model asked for a person
            args = exc.args[0] if exc.args else {}
            note = str(args.get("reason", "")) if isinstance(args, dict) else str(args)
            result = turn.escalate("model_request", note[:1000])
        except GeneratorError as exc:  # the model is unreachable: no guess, the person takes over
            turn.steps.append(Step("model", None, 0, 0.0, "error", str(exc)[:300]))
            result = turn.escalate("model_error", "")
        self._audit(turn, result)
        return result

    def _audit(self, turn: _Turn, result: TurnResult) -> None:
        if not self.kb.settings.audit.enabled:
            return
        redact = self.kb.components.guardrails.redact
        record = agent_record(
            result.answer_id,
            turn.caller,
            redact(turn.question),
            redact(result.content),
            result.decision in ("abstain", "escalate", "refuse"),
            {
                "decision": result.decision,
                "confidence": result.confidence,
                "steps": [s.__dict__ for s in result.steps],
                "pending": [p["id"] for p in result.pending],
                "review_id": result.review_id,
                "model_id": self.chat.model_id,
            },
        )
        record["retrieved"] = [
            {"chunk_id": h.chunk.chunk_id, "doc_id": h.chunk.doc_id, "source": h.chunk.source, "score": h.score}
            for h in turn.evidence.passages
        ]
        record["prompt"] = load_prompt("agent").ref  # id@version#hash of the agent prompt
        record["cited"] = [{k: c[k] for k in ("n", "chunk_id", "doc_id", "source")} for c in result.citations]
        self.kb.audit.write(record)


class _Turn:
    """The state of one turn (messages so far, evidence, steps, budget)."""

    def __init__(
        self, agent: Agent, caller: Caller, messages: list[dict[str, Any]], client_tools: list, builtin: bool
    ) -> None:
        self.agent, self.caller, self.builtin = agent, caller, builtin
        self.settings = agent.settings
        users = [m for m in messages if m.get("role") == "user" and _text(m.get("content"))]
        if not users:
            raise RequestError("messages: the conversation needs a user message with text")
        self.question = _text(users[-1]["content"])
        self.conversation = [m for m in messages if m.get("role") != "system"]  # the server's prompt only
        self.answer_id = uuid.uuid4().hex
        self.evidence = Evidence()
        self.steps: list[Step] = []
        self.pending: list[dict[str, Any]] = []
        self.budget = policy.Budget(self.settings)
        self.actions = policy.allowed_actions(agent.actions, caller.scopes) if builtin else {}
        self.client_tools = {t["function"]["name"]: t for t in client_tools if _tool_name(t)}
        builtins = [SEARCH_TOOL, ESCALATE_TOOL, *(a.tool() for a in self.actions.values())] if builtin else []
        self.tools = builtins + [t for n, t in self.client_tools.items() if n not in _reserved(self.actions)]

    # -- the loop -------------------------------------------------------------------------------------
    def run(self, tool_choice: Any) -> TurnResult:
        decisions = self.agent.kb.components.guardrails.check_question(self.question)
        verdict = policy.question_decision(decisions, self.settings)
        if verdict == "escalate":
            return self.escalate("denied_topic", decisions[0].detail if decisions else "")
        if verdict == "refuse":
            return self._result(REFUSAL, "refuse")
        system = load_prompt("agent").render(question=self.question)[0]
        messages = [system, *self.conversation]
        while (bound := self.budget.exceeded()) is None:
            t0 = time.perf_counter()
            reply = self.agent.chat.complete_tools(
                messages,
                self.tools,
                tool_choice if self.budget.steps == 0 else None,  # a forced choice applies to the first call only
                self.budget.tokens_left(self.agent.kb.settings.generator.max_tokens),
            )
            self.budget.steps += 1
            self.budget.tokens += reply.completion_tokens
            ms = round((time.perf_counter() - t0) * 1000, 1)
            if not reply.tool_calls:
                self.steps.append(Step("model", None, len(reply.content), ms, "proposes_answer"))
                return self.finish(reply.content)
            self.steps.append(Step("model", None, len(reply.content), ms, f"proposes_{len(reply.tool_calls)}_calls"))
            messages.append(_assistant(reply.content, reply.tool_calls))
            client = self._run_calls(reply.tool_calls, messages)
            if client:
                return self._result(reply.content, "client_tools", "tool_calls", client)
        self.steps.append(Step("policy", None, 0, 0.0, "stopped", bound))
        return self.low_confidence(f"budget:{bound}")

    def _run_calls(self, calls: list[ToolCall], messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Run the server-side calls (each answered with a tool message); the client's calls are returned."""
        client: list[dict[str, Any]] = []
        for i, call in enumerate(calls):
            if call.name in self.client_tools and call.name not in _reserved(self.actions):
                client.append(_wire_call(call))
                continue
            t0 = time.perf_counter()
            if i >= self.settings.max_tool_calls:
                decision, output = (
                    "refused",
                    json.dumps({"error": "too many tool calls in one step (agent.max_tool_calls)"}),
                )
            else:
                decision, output = self._call(call)
            ms = round((time.perf_counter() - t0) * 1000, 1)
            self.steps.append(Step(call.name, _args_or_text(call.arguments), len(output), round(ms, 1), decision))
            messages.append({"role": "tool", "tool_call_id": call.id, "content": output})
            if decision == "escalate":
                raise _Escalate(_args_or_text(call.arguments))
        return client

    def _call(self, call: ToolCall) -> tuple[str, str]:
        """(decision, the tool message's content) for one server-side call."""
        try:
            args = json.loads(call.arguments or "{}")
        except ValueError:
            return "invalid_arguments", json.dumps({"error": "arguments are not valid JSON"})
        if self.builtin and call.name == SEARCH:
            problem = _search_problem(args)
            if problem:
                return "invalid_arguments", json.dumps({"error": problem})
            try:
                out = search_tool(self.agent.kb, self.caller.access, self.evidence, args["query"], args.get("top_k", 5))
            except GroundworkError as exc:
                return "failed", json.dumps({"error": str(exc)[:300]})
            return "searched", out
        if self.builtin and call.name == ESCALATE:
            return "escalate", json.dumps({"status": "escalated"})
        action = self.actions.get(call.name)
        if action is None:  # unknown, or not allowed for this key: the model is told, nothing runs
            known = call.name in self.agent.actions
            return "denied", json.dumps(
                {"error": f"{call.name}: {'not allowed for this key' if known else 'no such tool'}"}
            )
        problem = validate_arguments(action, args)
        if problem is not None:
            return "invalid_arguments", json.dumps({"error": f"invalid arguments: {problem}"})
        if action.needs_confirmation:
            item = self.agent.pending.create(
                PendingAction.new(action.name, args, self.caller.name, self.caller.access, self.answer_id)
            )
            self.pending.append({"id": item.id, "action": action.name, "arguments": args, "status": "pending"})
            return "pending_confirmation", json.dumps(
                {
                    "status": "pending_confirmation",
                    "id": item.id,
                    "note": "a person must confirm this action before it runs",
                }
            )
        result: ActionResult = run_action(action, args, self.settings)
        return ("executed" if result.ok else "failed"), json.dumps(result.to_dict())

    # -- endings --------------------------------------------------------------------------------------
    def finish(self, text: str) -> TurnResult:
        """The model proposes ``text`` as the answer: given only with enough retrieval confidence."""
        if not self.builtin:
            return self._result(text, "answer")
        if self.evidence.searches == 0:  # the model did not look: the question is searched before deciding
            t0 = time.perf_counter()
            out = search_tool(self.agent.kb, self.caller.access, self.evidence, self.question)
            ms = round((time.perf_counter() - t0) * 1000, 1)
            self.steps.append(Step(SEARCH, {"query": self.question}, len(out), ms, "policy_search"))
        decision = policy.answer_decision(self.evidence.confidence, self.settings)
        self.steps.append(Step("policy", None, 0, 0.0, decision, f"confidence {self.evidence.confidence}"))
        if decision != "answer":
            return self.low_confidence("low_confidence")
        return self._result(self._with_pending(text), "answer", citations=self._citations(text))

    def low_confidence(self, reason: str) -> TurnResult:
        if self.settings.low_confidence == "escalate":
            return self.escalate(reason, "")
        return self._result(self._with_pending(ABSTAIN_MESSAGE), "abstain")

    def escalate(self, reason: str, note: str) -> TurnResult:
        evidence = [
            {"doc_id": h.chunk.doc_id, "chunk_id": h.chunk.chunk_id, "score": h.relevance, "text": h.chunk.text[:1000]}
            for h in self.evidence.passages
            if h.chunk.chunk_id not in self.evidence.withheld
        ]
        item = Escalation(
            reason,
            self.question,
            self.conversation,
            evidence,
            self.answer_id,
            self.caller.name,
            self.caller.access,
            note,
        )
        review_id = self.agent.escalate_fn(item)
        self.steps.append(Step("escalate", {"reason": reason}, len(evidence), 0.0, "escalated", review_id))
        result = self._result(self._with_pending(ESCALATED_MESSAGE), "escalate")
        result.review_id = review_id
        return result

    def _with_pending(self, text: str) -> str:
        for p in self.pending:
            text += f"\n\n(The action {p['action']} is waiting for a person's confirmation: id {p['id']}.)"
        return text

    def _citations(self, text: str) -> list[dict[str, Any]]:
        out, seen = [], set()
        for m in _CITE.finditer(text):
            n = int(m.group(1))
            if n in seen or not 1 <= n <= len(self.evidence.passages):
                continue
            h = self.evidence.passages[n - 1]
            if h.chunk.chunk_id in self.evidence.withheld:
                continue
            seen.add(n)
            c = h.chunk
            cite = Citation(n, c.doc_id, c.chunk_id, c.source, h.score, c.text, c.heading, c.page, [], c.title)
            out.append(to_wire(cite))
        return out

    def _result(
        self, content: str, decision: str, finish: str = "stop", calls: list | None = None, citations=None
    ) -> TurnResult:
        return TurnResult(
            self.answer_id,
            content,
            finish,
            decision,
            calls or [],
            citations or [],
            self.pending,
            self.steps,
            self.evidence.confidence,
        )


class _Escalate(Exception):
    """The model called escalate_to_human (carries its arguments)."""


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type", "text") == "text"
        )
    return ""


def _tool_name(tool: Any) -> str:
    fn = tool.get("function") if isinstance(tool, dict) else None
    return str(fn.get("name", "")) if isinstance(fn, dict) else ""


def _reserved(actions: dict[str, Action]) -> set[str]:
    """Names a client tool may not take over: the built-ins and the declared actions."""
    return {SEARCH, ESCALATE, *actions}


def _search_problem(args: Any) -> str | None:
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(SEARCH_TOOL["function"]["parameters"]).iter_errors(args)
    )
    return None if error is None else f"invalid arguments: {error.message}"


def _args_or_text(arguments: str) -> Any:
    try:
        return json.loads(arguments or "{}")
    except ValueError:
        return arguments[:500]


def _assistant(content: str, calls: list[ToolCall]) -> dict[str, Any]:
    return {"role": "assistant", "content": content or None, "tool_calls": [_wire_call(c) for c in calls]}


def _wire_call(call: ToolCall) -> dict[str, Any]:
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
