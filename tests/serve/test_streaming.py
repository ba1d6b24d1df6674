"""Streaming never shows what the guard removes: the SSE deltas an ordinary OpenAI client joins are
the final guarded answer, byte for byte, and PII that is not in the sources is in no delta."""

from __future__ import annotations

import openai
import pytest

from tests.chat_server import ChatServer
from tests.serve.server import Server, create_key, wait_job

pytestmark = pytest.mark.slow

CONTACTS = b"# Payroll\n\nPayroll questions go to payroll@acme-widgets.example, Monday to Friday.\n"


def reply(messages: list[dict]) -> str:
    # quotes the source's address, then invents another (the chat server streams word by word)
    return (
        "Email payroll@acme-widgets.example about pay [1]. For urgent cases write to "
        "jane.doe.private@gmail.com or call +1 415 555 0134 directly. Payroll answers Monday to Friday [1]."
    )


def test_joined_sse_deltas_equal_the_guarded_answer(tmp_path) -> None:
    with ChatServer(reply) as llm:
        kb = tmp_path / "kb"
        key = create_key(kb, "ops", "query,ingest")
        env = {
            "GROUNDWORK_GENERATOR__BACKEND": "openai",
            "GROUNDWORK_GENERATOR__MODEL": "test-model",
            "GROUNDWORK_GENERATOR__BASE_URL": llm.base_url,
            "OPENAI_API_KEY": "test",
        }
        srv = Server(kb, env=env).start()
        try:
            c = srv.client(key)
            r = c.post("/v1/documents", files=[("files", ("payroll.md", CONTACTS, "text/markdown"))])
            assert wait_job(c, r.json()["job_id"])["status"] == "done"
            client = openai.OpenAI(base_url=srv.url + "/v1", api_key=key)
            question = [{"role": "user", "content": "Who answers payroll questions?"}]
            chunks = list(client.chat.completions.create(model="groundwork", stream=True, messages=question))
            deltas = [ch.choices[0].delta.content or "" for ch in chunks if ch.choices]
            final = client.chat.completions.create(model="groundwork", messages=question).choices[0].message.content
        finally:
            srv.stop()
    joined = "".join(deltas)
    assert joined == final  # byte for byte: nothing was sent that the final answer does not hold
    assert "payroll@acme-widgets.example" in joined  # quoted from the caller's own document: shown
    assert "[EMAIL]" in joined and "[PHONE]" in joined
    for d in deltas:  # the invented address and number never left the server, not even in part
        assert "jane.doe" not in d and "gmail" not in d and "555 0134" not in d
    assert len([d for d in deltas if d]) > 1  # it did stream, sentence by sentence
