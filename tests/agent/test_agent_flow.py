"""The agent through the official `openai` client on /v1/chat/completions against the real server,
whose LLM is the scripted local Chat Completions server: search first, then a side-effect action that
waits for a person; confirm runs it exactly once, reject never; invalid arguments never run; a
question without a relevant document escalates to the review queue; client tools come back."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
from pathlib import Path

import httpx
import openai
import pytest

from tests.agent.conftest import SECRET, Endpoint

pytestmark = pytest.mark.slow


def client(env, tenant: str = "acme") -> openai.OpenAI:
    return openai.OpenAI(base_url=env["srv"].url + "/v1", api_key=env["keys"][tenant], max_retries=0, timeout=120)


def http(env, tenant: str = "acme") -> httpx.Client:
    return env["srv"].client(env["keys"][tenant])


def propose(env, text: str = "Please open a ticket: the parking gate is broken", tenant: str = "acme"):
    return client(env, tenant).chat.completions.create(
        model="groundwork", messages=[{"role": "user", "content": text}], tools=[]
    )


def test_search_then_a_side_effect_action_waits_and_confirm_runs_it_once(agent_env) -> None:
    env, calls = agent_env, agent_env["endpoint"].calls
    before, sent_before = len(calls), len(env["chat"].requests)
    resp = propose(env)
    extra = resp.model_extra
    pending = extra["pending_actions"]
    assert [p["action"] for p in pending] == ["create_ticket"] and len(calls) == before  # pending, not run
    assert "waiting for a person's confirmation" in resp.choices[0].message.content
    cited = resp.choices[0].message.model_extra["citations"]
    assert [c["doc_id"] for c in cited] == ["upload://acme/acme-parking.md"]  # [1]: the searched passage
    first = env["chat"].requests[sent_before]
    offered = {t["function"]["name"] for t in first["tools"]}
    assert {"search_knowledge_base", "escalate_to_human", "create_ticket"} <= offered
    assert "purge_index" not in offered  # the key lacks the admin scope the action requires
    assert first["messages"][-1]["role"] == "user"
    second = env["chat"].requests[sent_before + 1]["messages"]
    assert second[-1]["role"] == "tool" and "ALPHA" in second[-1]["content"]  # searched under the key's tenant
    with http(env) as c:
        listed = c.get("/v1/actions/pending").json()
        assert pending[0]["id"] in [a["id"] for a in listed]
        record = c.get(f"/v1/actions/pending/{pending[0]['id']}").json()
        assert record["status"] == "pending" and record["arguments"] == {"title": "Broken gate", "priority": "high"}
        done = c.post(f"/v1/actions/pending/{pending[0]['id']}/confirm").json()
        assert done["status"] == "done" and done["decided_by"] == "acme-user" and done["result"]["ok"]
        assert len(calls) == before + 1 and calls[-1]["body"] == {"title": "Broken gate", "priority": "high"}
        assert calls[-1]["auth"] == SECRET  # the header came from the environment variable
        again = c.post(f"/v1/actions/pending/{pending[0]['id']}/confirm")
        assert again.status_code == 409 and len(calls) == before + 1  # a double confirm never runs it twice
    audit = env["kb"] / "audit.sqlite"
    log = (env["srv"].log.read_bytes() + audit.read_bytes() + Path(str(audit) + "-wal").read_bytes()).decode("latin-1")
    assert SECRET.split()[1] not in log  # header values never logged nor audited


def test_every_step_is_in_the_audit_record(agent_env) -> None:
    env = agent_env
    resp = propose(env)
    steps = _steps(env, resp.model_extra["answer_id"])
    tools = [(s["tool"], s["decision"]) for s in steps]
    assert ("search_knowledge_base", "searched") in tools and ("create_ticket", "pending_confirmation") in tools
    search = next(s for s in steps if s["tool"] == "search_knowledge_base")
    assert search["arguments"] == {"query": "where do visitors park"} and search["result_chars"] > 0
    assert all("ms" in s for s in steps)


def test_reject_never_runs_it_and_another_tenant_cannot_see_it(agent_env) -> None:
    env, calls = agent_env, agent_env["endpoint"].calls
    item = propose(env).model_extra["pending_actions"][0]
    before = len(calls)
    with http(env, "globex") as other:  # another tenant: not listed, not found, cannot decide
        assert item["id"] not in [a["id"] for a in other.get("/v1/actions/pending?status=all").json()]
        assert other.post(f"/v1/actions/pending/{item['id']}/confirm").status_code == 404
    with http(env) as c:
        r = c.post(f"/v1/actions/pending/{item['id']}/reject").json()
        assert r["status"] == "rejected" and r["result"] is None
        assert c.post(f"/v1/actions/pending/{item['id']}/confirm").status_code == 409
    assert len(calls) == before


def test_invalid_arguments_are_rejected_by_the_schema_before_anything_runs(agent_env) -> None:
    env, calls = agent_env, agent_env["endpoint"].calls
    before, sent = len(calls), len(env["chat"].requests)
    resp = propose(env, "Open a ticket with INVALID arguments please")
    assert resp.model_extra["pending_actions"] == [] and len(calls) == before
    told = [m for m in env["chat"].requests[-1]["messages"] if m["role"] == "tool"][-1]["content"]
    assert "invalid arguments" in told and len(env["chat"].requests) > sent  # the model is told why


def test_a_question_without_a_relevant_document_escalates_to_the_review_queue(agent_env) -> None:
    from groundwork.evaluate.reviewed import reviewed_rows
    from groundwork.state.reviews import SqliteReviewQueue

    resp = propose(agent_env, "What is the boiling point of mercury in kelvin?")
    extra = resp.model_extra
    assert extra["agent"]["decision"] == "escalate" and extra["agent"]["review_id"]
    assert "passed your question to a person" in resp.choices[0].message.content
    assert "north car park" not in resp.choices[0].message.content  # the model's guess is not shown
    queue = SqliteReviewQueue(agent_env["kb"] / "reviews.sqlite")
    item = queue.get(extra["agent"]["review_id"])
    assert item.kind == "escalation" and item.status == "open" and item.tenant == "acme"
    assert "boiling point" in item.question and item.evidence  # with the retrieved evidence
    assert all("upload://acme/" in e["doc_id"] for e in item.evidence)
    rid = extra["agent"]["review_id"]
    with http(agent_env) as asker, http(agent_env, "acme-reviewer") as reviewer, http(agent_env, "globex") as other:
        assert asker.get(f"/v1/escalations/{rid}").json()["reply"] is None
        assert other.get(f"/v1/escalations/{rid}").status_code == 404  # another tenant's escalation
        reply = "Mercury boils at 629.88 K."
        assert reviewer.post(f"/v1/reviews/{rid}/resolve", json={"answer": reply}).status_code == 200
        sent_back = asker.get(f"/v1/escalations/{rid}").json()
        assert sent_back["status"] == "resolved" and sent_back["reply"] == reply
    rows = reviewed_rows(SqliteReviewQueue(agent_env["kb"] / "reviews.sqlite"))
    assert any("boiling point" in r["question"] and reply in json.dumps(r) for r in rows)  # an eval item


def test_client_tools_come_back_as_tool_calls(agent_env) -> None:
    env = agent_env
    weather = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    resp = client(env).chat.completions.create(
        model="groundwork",
        messages=[{"role": "user", "content": "What's the weather in Paris?"}],
        tools=[weather],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls[0].function.name == "get_weather"
    assert json.loads(choice.message.tool_calls[0].function.arguments) == {"city": "Paris"}
    sent = env["chat"].requests[-1]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert "get_weather" in {t["function"]["name"] for t in sent["tools"]}


def _confirm_in_process(kb: str, item_id: str, url: str, start) -> None:
    import os

    from groundwork.agent.actions import load_actions
    from groundwork.agent.confirm import ActionConflict, decide
    from groundwork.agent.records import Caller
    from groundwork.config import AgentSettings
    from groundwork.state.pending import SqlitePendingActions
    from groundwork.types import Access

    os.environ["TICKETS_URL"] = url
    actions = load_actions(Path(kb) / "actions.toml")
    start.wait()
    with contextlib.suppress(ActionConflict):  # the loser of the race
        decide(
            SqlitePendingActions(Path(kb) / "actions.sqlite"),
            actions,
            item_id,
            Caller("p", ("query",), Access.all()),
            True,
            AgentSettings(),
        )


def test_two_processes_confirming_at_once_run_it_once(tmp_path: Path) -> None:
    from groundwork.state.pending import PendingAction, SqlitePendingActions
    from tests.agent.conftest import ACTIONS

    (tmp_path / "actions.toml").write_text(ACTIONS)
    item = SqlitePendingActions(tmp_path / "actions.sqlite").create(
        PendingAction.new("create_ticket", {"title": "x", "priority": "low"}, "k", None)
    )
    endpoint = Endpoint()
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()
    procs = [
        ctx.Process(target=_confirm_in_process, args=(str(tmp_path), item.id, endpoint.url, start)) for _ in range(2)
    ]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(60)
    endpoint.close()
    assert [p.exitcode for p in procs] == [0, 0]
    assert len(endpoint.calls) == 1
    assert SqlitePendingActions(tmp_path / "actions.sqlite").get(item.id).status == "done"


def _steps(env, answer_id: str) -> list[dict]:
    import sqlite3

    with sqlite3.connect(env["kb"] / "audit.sqlite") as db:
        row = db.execute("SELECT record FROM audit WHERE answer_id = ?", (answer_id,)).fetchone()
    return json.loads(row[0])["agent"]["steps"]


def test_the_policy_bounds_tool_calls_per_step_and_steps_per_turn(agent_env) -> None:
    resp = propose(agent_env, "Run six searches about parking")
    decisions = [
        s["decision"] for s in _steps(agent_env, resp.model_extra["answer_id"]) if s["tool"] == "search_knowledge_base"
    ]
    assert decisions == ["searched"] * 4 + ["refused"] * 2  # agent.max_tool_calls = 4
    resp = propose(agent_env, "Search again and again")
    steps = _steps(agent_env, resp.model_extra["answer_id"])
    assert sum(s["tool"] == "model" for s in steps) == 6  # agent.max_steps
    assert ("policy", "stopped", "max_steps") in [(s["tool"], s["decision"], s["detail"]) for s in steps]
    assert resp.model_extra["agent"]["decision"] == "escalate"  # a stopped turn is never a guess
