"""``/v1/chat/completions`` with tools or in agent mode (``groundwork.agent.loop``).

- ``agent.enabled``: the agent loop runs with the built-in ``search_knowledge_base``, the actions the
  key's scopes allow, ``escalate_to_human`` and the client's ``tools``.
- ``tools`` without agent mode: the model is offered the client's tools only (``tool_choice`` passed
  through); a call comes back as ``tool_calls`` (``finish_reason: "tool_calls"``), and when the model
  answers in text instead, the question is answered by the grounded pipeline as without tools (a
  client cannot turn grounding off). A generator that cannot call tools (extractive, bedrock,
  transformers) answers as without tools, unless ``tool_choice`` requires a call (422).
With ``stream: true`` the turn's result is sent as one chunk (then ``[DONE]``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from fastapi.responses import StreamingResponse

from groundwork.agent.records import Caller, TurnResult
from groundwork.errors import GroundworkError
from groundwork.llm.chat import ToolChatModel
from groundwork.serve import schemas as S
from groundwork.serve.auth import Principal
from groundwork.serve.errors import ApiError, user_error
from groundwork.serve.routes.query import busy
from groundwork.serve.service import Service


def agent_turn(svc: Service, req: S.ChatRequest) -> bool:
    """Whether this request runs the agent loop (agent mode, or tools a model can call)."""
    if svc.settings.agent.enabled:
        return True
    if not req.tools or req.tool_choice == "none":
        return False
    if isinstance(svc.kb.components.chat_model, ToolChatModel):
        return True
    if req.tool_choice not in (None, "auto"):
        raise ApiError(422, "invalid_request", "tool_choice: this server's generator cannot call tools")
    return False


def run_agent_chat(svc: Service, p: Principal, req: S.ChatRequest) -> Any:
    """The agent turn's completion (or SSE stream); None when the grounded pipeline should answer."""
    messages = [m.model_dump(exclude_none=True) for m in req.messages]
    tools = [t.model_dump(exclude_none=True) for t in req.tools or []]
    agent_mode = svc.settings.agent.enabled
    created = int(time.time())
    with svc.gate.slot(p.access.tenant) as ok:
        if not ok:
            raise busy(p)
        try:
            result = svc.agents.agent().run(
                messages, Caller(p.name, p.scopes, p.access), tools, req.tool_choice, builtin=agent_mode
            )
        except GroundworkError as exc:
            raise user_error(exc) from None
    if result.decision == "answer" and not agent_mode:
        return None  # a text reply: the grounded pipeline answers instead (the caller does)
    body = _body(result, req.model, created)
    if req.stream:
        return StreamingResponse(
            _one_chunk(body), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )
    return body


def _body(result: TurnResult, model: str, created: int) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": result.content, "citations": result.citations}
    if result.tool_calls:
        message["tool_calls"] = result.tool_calls
        message["content"] = result.content or None
    completion_tokens = max(1, len(result.content) // 4)
    return {
        "id": f"chatcmpl-{result.answer_id}",
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "finish_reason": result.finish_reason, "message": message}],
        "usage": {"prompt_tokens": 1, "completion_tokens": completion_tokens, "total_tokens": 1 + completion_tokens},
        "answer_id": result.answer_id,
        "pending_actions": result.pending,
        "agent": {
            "decision": result.decision,
            "confidence": result.confidence,
            "review_id": result.review_id,
            "steps": len(result.steps),
        },
    }


def _one_chunk(body: dict[str, Any]) -> Iterator[str]:
    choice = body["choices"][0]
    delta = {k: v for k, v in choice["message"].items() if v is not None}
    if "tool_calls" in delta:
        delta["tool_calls"] = [{"index": i, **c} for i, c in enumerate(delta["tool_calls"])]
    chunk = {k: body[k] for k in ("id", "created", "model", "answer_id", "pending_actions", "agent")}
    chunk["citations"] = choice["message"]["citations"]  # where the web page reads them, as in a normal stream
    chunk["abstained"] = body["agent"]["decision"] in ("abstain", "escalate", "refuse")
    chunk |= {
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": choice["finish_reason"]}],
    }
    yield f"data: {json.dumps(chunk)}\n\n"
    yield "data: [DONE]\n\n"
