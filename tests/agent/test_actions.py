"""actions.toml is checked when loaded; arguments are validated before anything runs; http actions time
out, retry 5xx a bounded number of times, never retry 4xx, and never reveal a URL or header value."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from groundwork.agent.actions import load_actions, run_action, validate_arguments
from groundwork.agent.policy import allowed_actions, answer_decision, question_decision
from groundwork.config import AgentSettings
from groundwork.errors import ConfigError
from groundwork.types import GuardDecision

GOOD = """
[[action]]
name = "notify"
description = "Send a notification"
kind = "http"
url_env = "NOTIFY_URL"
headers_env = { Authorization = "NOTIFY_AUTH" }
scope = "ingest"
parameters = { type = "object", properties = { text = { type = "string", maxLength = 20 } }, required = ["text"], additionalProperties = false }
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "actions.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "named"),
    [
        (GOOD.replace('kind = "http"', 'kind = "shell"'), "kind"),
        (GOOD.replace('url_env = "NOTIFY_URL"', ""), "url_env"),
        (GOOD.replace('scope = "ingest"', 'scope = "root"'), "scope"),
        (GOOD.replace('name = "notify"', 'name = "search_knowledge_base"'), "reserved"),
        (GOOD.replace('name = "notify"', 'name = "../etc"'), "name"),
        (GOOD.replace('type = "string"', 'type = "strong"'), "JSON Schema"),
        (GOOD + GOOD, "twice"),
        ("[[action]\n", "cannot read"),
    ],
)
def test_a_bad_actions_file_is_refused_naming_the_problem(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_actions(write(tmp_path, text))


def test_arguments_are_validated_against_the_schema(tmp_path: Path) -> None:
    action = load_actions(write(tmp_path, GOOD))["notify"]
    assert action.side_effect and action.confirm and action.needs_confirmation  # the safe defaults
    assert validate_arguments(action, {"text": "hi"}) is None
    assert "text" in validate_arguments(action, {"text": "x" * 21})
    assert validate_arguments(action, {"text": "hi", "extra": 1}) is not None
    assert validate_arguments(action, ["hi"]) == "arguments must be a JSON object"


def test_scopes_decide_which_actions_are_offered_and_confidence_decides_answers(tmp_path: Path) -> None:
    actions = load_actions(write(tmp_path, GOOD))
    assert allowed_actions(actions, ("query",)) == {}
    assert set(allowed_actions(actions, ("query", "ingest"))) == {"notify"}
    assert set(allowed_actions(actions, ("admin",))) == {"notify"}
    s = AgentSettings(min_confidence=0.4)
    assert answer_decision(0.41, s) == "answer" and answer_decision(0.39, s) == "escalate"
    assert answer_decision(None, s) == "escalate"  # nothing retrieved: never a guess
    assert answer_decision(0.1, AgentSettings(low_confidence="abstain")) == "abstain"


def test_a_denied_topic_escalates_and_another_blocked_question_is_refused() -> None:
    topic = GuardDecision("denied_topic", "input", "blocked", "question matches denied topic 'x'", 0.8, ["x"])
    injection = GuardDecision("injection", "input", "blocked", "prompt injection")
    assert question_decision([topic], AgentSettings()) == "escalate"
    assert question_decision([topic], AgentSettings(escalate_denied_topics=False)) == "refuse"
    assert question_decision([injection], AgentSettings()) == "refuse"
    assert question_decision([], AgentSettings()) is None


class Flaky:
    """Answers ``statuses`` in turn (then 200); ``delay`` seconds before each answer."""

    def __init__(self, statuses: list[int], delay: float = 0.0) -> None:
        self.statuses, self.hits = list(statuses), 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                outer.hits += 1
                time.sleep(delay)
                status = outer.statuses.pop(0) if outer.statuses else 200
                data = json.dumps({"status": status}).encode()
                with contextlib.suppress(OSError):  # the client gave up (timeout): nobody to answer
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/secret-path"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def __enter__(self) -> Flaky:
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.parametrize(
    ("statuses", "delay", "retries", "ok", "hits"),
    [
        ([503, 502], 0.0, 2, True, 3),  # 5xx retried, then it works
        ([503, 503, 503, 503], 0.0, 2, False, 3),  # bounded: 1 + retries attempts
        ([400], 0.0, 2, False, 1),  # 4xx never retried
        ([], 1.0, 1, False, 2),  # each attempt times out
    ],
)
def test_http_actions_retry_a_bounded_number_of_times_and_never_leak_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, statuses, delay, retries, ok, hits
) -> None:
    action = load_actions(write(tmp_path, GOOD))["notify"]
    settings = AgentSettings(action_retries=retries, action_timeout_s=0.3)
    with Flaky(statuses, delay) as server:
        monkeypatch.setenv("NOTIFY_URL", server.url)
        monkeypatch.setenv("NOTIFY_AUTH", "Bearer s3cr3t-value")
        result = run_action(action, {"text": "hi"}, settings)
    assert result.ok is ok and server.hits == hits
    shown = json.dumps(result.to_dict())
    assert "s3cr3t" not in shown and "secret-path" not in shown and "127.0.0.1" not in shown


def test_a_python_action_that_raises_is_reported_not_raised(tmp_path: Path) -> None:
    text = GOOD.replace('kind = "http"', 'kind = "python"\nentry_point = "json:loads"').replace(
        'url_env = "NOTIFY_URL"', ""
    )
    result = run_action(load_actions(write(tmp_path, text))["notify"], {"text": "not json"}, AgentSettings())
    assert not result.ok and result.error.startswith("TypeError")
