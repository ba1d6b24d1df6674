"""A local server implementing OpenAI's Chat Completions schema (non-streaming and SSE streaming),
for testing the ``openai`` backend without a paid service. Every body it sends is first validated
with the ``openai`` client's own types (ChatCompletion, ChatCompletionChunk), so it cannot drift from
the published schema.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from openai.types.chat import ChatCompletion, ChatCompletionChunk

Reply = Callable[[list[dict]], "str | dict"]


def tool_calls(*calls: tuple[str, dict | str]) -> dict:
    """A scripted reply that calls tools: ``tool_calls(("search_knowledge_base", {"query": "x"}))``
    (arguments as a dict, or as raw text to script invalid JSON)."""
    return {
        "content": None,
        "tool_calls": [
            {
                "id": f"call_{i}_{name}",
                "type": "function",
                "function": {"name": name, "arguments": args if isinstance(args, str) else json.dumps(args)},
            }
            for i, (name, args) in enumerate(calls)
        ],
    }


class ChatServer:
    """``reply(messages) -> text``, or a message dict with ``tool_calls`` (see ``tool_calls``); the
    whole request body (``tools``, ``tool_choice`` ...) is in ``requests``. ``fail_with`` = [503, 503]
    makes the next two requests fail."""

    def __init__(self, reply: Reply, model: str = "test-model") -> None:
        self.reply, self.model = reply, model
        self.requests: list[dict] = []
        self.fail_with: list[int] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                if self.path.rstrip("/") != "/v1/chat/completions":
                    return self._send(404, {"error": {"message": "not found", "type": "invalid_request_error"}})
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                if server.fail_with:
                    return self._send(
                        server.fail_with.pop(0), {"error": {"message": "unavailable", "type": "server_error"}}
                    )
                text = server.reply(body["messages"])
                if body.get("stream") and isinstance(text, str):
                    return self._stream(text)
                message = (
                    {"role": "assistant", **text} if isinstance(text, dict) else {"role": "assistant", "content": text}
                )
                finish = "tool_calls" if message.get("tool_calls") else "stop"
                resp = {
                    "id": "chatcmpl-test",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": server.model,
                    "choices": [{"index": 0, "finish_reason": finish, "message": message}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
                }
                ChatCompletion.model_validate(resp)
                self._send(200, resp)

            def _send(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, text: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                pieces = [text[i : i + 7] for i in range(0, len(text), 7)]
                for i, piece in enumerate([*pieces, None]):
                    delta = {"content": piece} if piece is not None else {}
                    if i == 0:
                        delta["role"] = "assistant"
                    chunk = {
                        "id": "chatcmpl-test",
                        "object": "chat.completion.chunk",
                        "created": int(time.time()),
                        "model": server.model,
                        "choices": [
                            {"index": 0, "delta": delta, "finish_reason": None if piece is not None else "stop"}
                        ],
                    }
                    ChatCompletionChunk.model_validate(chunk)
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> ChatServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
