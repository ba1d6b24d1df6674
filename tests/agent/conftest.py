"""One real `groundwork serve` in agent mode for the agent tests: two tenants' documents, an
OpenAI-compatible scripted chat server as the LLM, and a local HTTP endpoint as the action's target."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.chat_server import ChatServer, tool_calls
from tests.serve.server import Server, create_key, wait_job

AGENT_PROMPT = "You are an assistant that answers from a knowledge base and can call tools"
SECRET = "Bearer tickets-secret-7f3a9c"  # the action's header value: never logged, never audited
ACME_DOC = "# Parking\n\nVisitors park in the north car park ALPHA, next to the main entrance.\n"
GLOBEX_DOC = "# Parking\n\nVisitors park in the south garage BRAVO, under the office tower.\n"
ACTIONS = """
[[action]]
name = "create_ticket"
description = "Open a facilities ticket"
kind = "http"
url_env = "TICKETS_URL"
method = "POST"
headers_env = { Authorization = "TICKETS_AUTH" }
side_effect = true
confirm = true
scope = "query"
parameters = { type = "object", properties = { title = { type = "string", minLength = 1 }, priority = { enum = ["low", "high"] } }, required = ["title", "priority"], additionalProperties = false }

[[action]]
name = "purge_index"
description = "Delete everything (admins only)"
kind = "python"
entry_point = "json:dumps"
side_effect = true
confirm = false
scope = "admin"
parameters = { type = "object", properties = { obj = { type = "string" } }, required = ["obj"] }
"""


def script(messages: list[dict]):
    """The scripted model. Agent turns: search first; a ticket request then proposes create_ticket
    (with invalid arguments when the user says so); a weather question calls the client's tool; else
    it answers, citing [1]. Any other prompt (the grounded answer of MCP `ask`) gets a cited answer."""
    if not (messages and messages[0]["role"] == "system" and messages[0]["content"].startswith(AGENT_PROMPT)):
        return "Visitors park in the car park named in the passage [1]."
    user = [m for m in messages if m["role"] == "user"][-1]["content"].lower()
    tools = [m for m in messages if m["role"] == "tool"]
    if "again and again" in user:  # never stops searching: the loop's bound ends it
        return tool_calls(("search_knowledge_base", {"query": "where do visitors park"}))
    if "six searches" in user and not tools:  # more calls in one step than agent.max_tool_calls
        return tool_calls(*[("search_knowledge_base", {"query": f"parking {i}"}) for i in range(6)])
    if "weather" in user and not tools:
        return tool_calls(("get_weather", {"city": "Paris"}))
    if not tools:
        query = "where do visitors park" if "ticket" in user else user
        return tool_calls(("search_knowledge_base", {"query": query}))
    if "ticket" in user and len(tools) == 1:
        args = {"title": 5, "priority": "urgent"} if "invalid" in user else {"title": "Broken gate", "priority": "high"}
        return tool_calls(("create_ticket", args))
    return "Visitors park in the north car park [1]."


class Endpoint:
    """A local HTTP endpoint that records every request (the action's side effect)."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        calls = self.calls

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                calls.append({"body": body, "auth": self.headers.get("Authorization")})
                data = json.dumps({"ticket": len(calls)}).encode()
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/tickets"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="package")  # one server for every agent test module
def agent_env(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("agent")
    kb = root / "kb"
    (root / "actions.toml").write_text(ACTIONS)
    keys = {
        "acme": create_key(kb, "acme-user", "query,ingest", tenant="acme"),
        "globex": create_key(kb, "globex-user", "query,ingest", tenant="globex"),
        "acme-reviewer": create_key(kb, "acme-reviewer", "query,admin", tenant="acme"),
    }
    endpoint = Endpoint()
    with ChatServer(script) as chat:
        env = {
            "GROUNDWORK_GENERATOR__BACKEND": "openai",
            "GROUNDWORK_GENERATOR__MODEL": "test-model",
            "GROUNDWORK_GENERATOR__BASE_URL": chat.base_url,
            "GROUNDWORK_GENERATOR__MAX_RETRIES": "0",
            "GROUNDWORK_AGENT__ENABLED": "true",
            "GROUNDWORK_AGENT__ACTIONS_FILE": str(root / "actions.toml"),
            "GROUNDWORK_AGENT__ACTION_RETRIES": "0",
            "TICKETS_URL": endpoint.url,
            "TICKETS_AUTH": SECRET,
        }
        srv = Server(kb, env=env).start(timeout=300)  # a loaded machine loads the model slowly
        try:
            for tenant, text in (("acme", ACME_DOC), ("globex", GLOBEX_DOC)):
                with srv.client(keys[tenant]) as c:
                    r = c.post(
                        "/v1/documents", files=[("files", (f"{tenant}-parking.md", text.encode(), "text/markdown"))]
                    )
                    assert wait_job(c, r.json()["job_id"])["status"] == "done"
            yield {"srv": srv, "keys": keys, "chat": chat, "endpoint": endpoint, "root": root, "kb": Path(kb)}
        finally:
            srv.stop()
            endpoint.close()
