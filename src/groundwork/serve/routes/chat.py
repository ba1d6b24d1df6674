"""``POST /v1/chat/completions``: OpenAI's Chat Completions request and response shapes, including
``stream: true`` as server-sent events, answered from the knowledge base.

The last user message is the question; earlier turns are the history used to rewrite a follow-up into
a stand-alone question. The content carries inline ``[n]`` markers; the message carries a
``citations`` array (in streaming, the final chunk does). ``model`` is echoed back; the generator is the
server's configured one. System messages from the client are ignored: the grounded-answer prompt
is the only system prompt (a client cannot turn grounding off).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from groundwork.serve import schemas as S
from groundwork.serve.auth import Principal
from groundwork.serve.deps import QUERY, SERVICE
from groundwork.serve.errors import AUTH_ERRORS, ERROR, ApiError
from groundwork.serve.routes.agent_chat import agent_turn, run_agent_chat
from groundwork.serve.routes.query import answer_question, check_quota
from groundwork.serve.service import Service
from groundwork.serve.telemetry import request_id
from groundwork.types import Answer, to_wire

log = logging.getLogger("groundwork.serve")
router = APIRouter(tags=["query"])

_SSE = {
    "type": "object",
    "required": ["data"],
    "description": "server-sent events; data is a chat.completion.chunk JSON object, then [DONE]",
    "properties": {"data": {"type": "string"}, "event": {"type": "string"}, "id": {"type": "string"}},
}
_RESPONSES = AUTH_ERRORS | {409: ERROR} | {200: {"content": {"text/event-stream": {"schema": _SSE}}}}


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: keep the text ones
        parts = [p for p in content if isinstance(p, dict) and p.get("type", "text") == "text"]
        return " ".join(str(p.get("text", "")) for p in parts)
    return ""


@router.post("/v1/chat/completions", response_model=S.ChatCompletionOut, responses=_RESPONSES)
def chat(req: S.ChatRequest, p: Principal = QUERY, svc: Service = SERVICE) -> Any:
    """OpenAI-compatible chat: point any OpenAI client's base_url at this server's /v1. With ``tools``
    (OpenAI's schema) the model may call them and its calls come back as ``tool_calls``; in agent
    mode (``agent.enabled``) the agent loop runs (see docs/agents.md)."""
    if agent_turn(svc, req) and (out := run_agent_chat(svc, p, req)) is not None:
        return out
    turns = [{"role": m.role, "content": _text(m.content)} for m in req.messages if m.role in ("user", "assistant")]
    if not turns or turns[-1]["role"] != "user" or not turns[-1]["content"].strip():
        raise ApiError(422, "invalid_request", "messages: the last message must be a user message with text")
    question, history = turns[-1]["content"], turns[:-1]
    created = int(time.time())
    check_quota(svc, p)  # before a stream starts: its HTTP status is still ours to choose
    if not req.stream:
        ans = answer_question(svc, p, question, req.mode, None, req.filter, history=history)
        return completion(ans, req.model, created, turns)
    return StreamingResponse(
        _stream(svc, p, req, question, history, created),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache"},
    )


def completion(ans: Answer, model: str, created: int, turns: list[dict]) -> dict[str, Any]:
    """A ``chat.completion`` object; ``usage`` is the answer's own (``Answer.usage``: every LLM call of
    it, or the tokenizer's count; 0 for an answer from the cache)."""
    u = ans.usage
    completion = u.completion_tokens if u is not None else max(1, len(ans.answer) // 4)
    prompt_tokens = u.prompt_tokens if u is not None else max(1, sum(len(t["content"]) for t in turns) // 4)
    message = {"role": "assistant", "content": ans.answer, "citations": [to_wire(c) for c in ans.citations]}
    return {
        "id": f"chatcmpl-{ans.answer_id}",
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": prompt_tokens + completion,
        },
        "answer_id": ans.answer_id,
    }


def _stream(
    svc: Service, p: Principal, req: S.ChatRequest, question: str, history: list[dict], created: int
) -> Iterator[str]:
    """Runs the answer on a thread; yields each piece the output guardrails released as a chunk, then
    a final chunk with the citations. The pieces join to exactly the final answer (see
    groundwork.answer.pipeline): nothing a guard removes is ever sent."""
    pieces: queue.Queue = queue.Queue()
    result: dict[str, Any] = {}
    cid = f"chatcmpl-{time.time_ns():x}"
    rid = request_id.get()

    def run() -> None:
        try:
            result["answer"] = answer_question(
                svc, p, question, req.mode, None, req.filter, history=history, on_token=pieces.put
            )
        except ApiError as exc:  # reported in the stream: the HTTP status is already 200
            result["error"] = {"code": exc.code, "message": exc.message}
        except Exception:  # a bug: logged with its traceback, never sent to the client
            log.exception("unhandled error in a streamed answer (request id %s)", rid)
            result["error"] = {"code": "internal", "message": f"internal error (request id {rid}); see the server log"}
        finally:
            pieces.put(None)

    def event(delta: dict, finish: str | None = None, **extra: Any) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        chunk = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": req.model}
        return f"data: {json.dumps(chunk | {'choices': [choice]} | extra)}\n\n"

    threading.Thread(target=run, daemon=True).start()
    yield event({"role": "assistant", "content": ""})
    while (piece := pieces.get()) is not None:
        yield event({"content": piece})
    if "error" in result:
        yield event({}, "stop", error=result["error"])
    else:
        ans = result["answer"]
        cites = [to_wire(c) for c in ans.citations]
        extra: dict[str, Any] = {"citations": cites, "answer_id": ans.answer_id, "abstained": ans.abstained}
        yield event({"citations": cites}, "stop", **extra)
    yield "data: [DONE]\n\n"
