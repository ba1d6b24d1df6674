"""LLM generators for real: the openai backend against a local Chat Completions server, the
transformers backend on a tiny model built by the test, Bedrock through botocore's Stubber."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from groundwork.answer.extractive import ABSTAIN_MESSAGE
from groundwork.cli import app
from groundwork.config import GeneratorSettings
from groundwork.errors import GeneratorError
from groundwork.llm.backends.bedrock import BedrockChat
from groundwork.llm.prompts import load_prompt
from tests.chat_server import ChatServer
from tests.conftest import write
from tests.tiny_models import build_tiny_causal_lm

PARK = (
    "# Parking\n\nVisitors park in the north car park, next to the main entrance. The south garage is for staff only.\n"
)
LUNCH = "# Canteen\n\nThe canteen serves lunch from noon until two o'clock every weekday.\n"


def _number_of(messages: list[dict], word: str) -> int:
    """The [n] of the context passage that contains ``word`` (what a good model would cite)."""
    user = messages[-1]["content"]
    for m in re.finditer(r"^\[(\d+)\] [^\n]*\n\"\"\"\n(.*?)\n\"\"\"", user, re.S | re.M):
        if word in m.group(2):
            return int(m.group(1))
    raise AssertionError(f"no passage with {word!r} in the prompt")


def park_reply(messages: list[dict]) -> str:
    n = _number_of(messages, "north car park")
    return f"Visitors park in the north car park [{n}], not in the garage [{n}][42]."


@pytest.fixture
def kb_docs(make_kb, tmp_path: Path):
    docs = tmp_path / "docs"
    write(docs / "parking.md", PARK)
    write(docs / "canteen.md", LUNCH)
    return docs


def openai_kb(make_kb, docs: Path, url: str, **extra):
    kb = make_kb(**{"generator.backend": "openai", "generator.model": "test-model", "generator.base_url": url, **extra})
    kb.ingest([docs])
    return kb


def test_openai_backend_answers_with_checked_citations(make_kb, kb_docs: Path) -> None:
    with ChatServer(park_reply) as server:
        # no answer cache: the second, streamed ask of the same question must reach the model too
        kb = openai_kb(make_kb, kb_docs, server.base_url, **{"cache.enabled": False})
        ans = kb.ask("Where can visitors park?")
        streamed: list[str] = []
        ans2 = kb.ask("Where can visitors park?", on_token=streamed.append)
    assert not ans.abstained and "north car park [1]" in ans.answer
    assert "[42]" not in ans.answer and ans.invalid_citations == 1 and "invalid_citations_removed" in ans.flags
    assert [c.source.endswith("parking.md") for c in ans.citations] == [True]
    assert ans.model_id == "openai:test-model" and ans.prompt == load_prompt("grounded-answer").ref
    req = server.requests[0]
    assert req["model"] == "test-model" and req["messages"][0]["role"] == "system"
    # streaming: the pieces arrive as the guard releases them and the invalid marker never reaches the reader
    assert server.requests[1]["stream"] is True and streamed and "".join(streamed) == ans2.answer

    def markers(t: str) -> str:  # streamed text keeps the prompt's numbers; the answer is renumbered from 1
        return re.sub(r"\[\d+\]", "[#]", t).strip()

    assert "[42]" not in "".join(streamed) and markers("".join(streamed)) == markers(ans2.answer)
    # the audit record names the prompt template and hash, the model and the index version
    record = kb.audit.get(ans.answer_id)
    assert record["prompt"].startswith("grounded-answer@1#") and record["model_id"] == "openai:test-model"
    assert record["index_version"] == 1 and record["retrieved"] and record["cited"][0]["source"].endswith("parking.md")


def test_context_is_labelled_and_strongest_chunks_sit_at_the_edges(make_kb, kb_docs: Path) -> None:
    for i in range(4):
        write(
            kb_docs / f"extra{i}.md",
            f"# Parking note {i}\n\nParking permit rule {i} applies to visitors on level {i}.\n",
        )
    with ChatServer(lambda m: "I could not find this in the indexed documents.") as server:
        kb = openai_kb(make_kb, kb_docs, server.base_url)
        ans = kb.ask("Where can visitors park?")
    assert ans.abstained and ans.citations == [] and "no_valid_citation" not in ans.flags
    user = server.requests[0]["messages"][1]["content"]
    numbers = [int(n) for n in re.findall(r"^\[(\d+)\] ", user, re.M)]
    k = len(numbers)
    assert k >= 4 and numbers[0] == 1 and numbers[-1] == 2 and numbers[1] == 3  # [1, 3, 5, ..., 4, 2]
    assert re.search(r"^\[\d+\] .*parking\.md, Parking$", user, re.M)  # label: source, heading


def test_failing_backend_falls_back_to_extractive_and_says_so(make_kb, kb_docs: Path) -> None:
    with ChatServer(park_reply) as server:
        server.fail_with = [503, 503, 503]
        kb = openai_kb(make_kb, kb_docs, server.base_url, **{"generator.max_retries": 1})
        ans = kb.ask("Where can visitors park?")
    assert len(server.requests) == 2  # one try + one retry
    assert "fallback" in ans.flags and "openai generator was unavailable" in ans.notice and "HTTP 503" in ans.notice
    assert ans.answer.startswith("(The openai generator was unavailable") and "north car park" in ans.answer
    assert ans.citations and ans.citations[0].source.endswith("parking.md")

    with socket.socket() as s:  # a port nobody listens on: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    kb = make_kb(
        "kb2",
        **{
            "generator.backend": "openai",
            "generator.model": "m",
            "generator.base_url": f"http://127.0.0.1:{port}/v1",
            "generator.max_retries": 0,
            "generator.timeout_s": 5,
        },
    )
    kb.ingest([kb_docs])
    pieces: list[str] = []
    ans = kb.ask("Where can visitors park?", on_token=pieces.append)
    assert "fallback" in ans.flags and "north car park" in ans.answer
    assert "".join(pieces) == ans.answer and ans.answer.count("generator was unavailable") == 1  # said once
    assert not [d for d in ans.guardrails if d.guard == "grounding"]  # a verbatim quote is grounded

    kb = make_kb(
        "kb3",
        **{
            "generator.backend": "openai",
            "generator.model": "m",
            "generator.base_url": f"http://127.0.0.1:{port}/v1",
            "generator.max_retries": 0,
            "generator.fallback": "none",
        },
    )
    kb.ingest([kb_docs])
    with pytest.raises(GeneratorError, match="openai generator failed"):
        kb.ask("Where can visitors park?")


def test_transformers_backend_streams_from_a_local_model(make_kb, kb_docs: Path, tmp_path: Path) -> None:
    model = build_tiny_causal_lm(tmp_path / "tiny-lm")
    kb = str(tmp_path / "kb")
    runner = CliRunner()
    assert runner.invoke(app, ["--kb", kb, "ingest", str(kb_docs)]).exit_code == 0
    args = ["--kb", kb, "ask", "Where can visitors park?", "--generator", "transformers", "--model-path", str(model)]
    r = runner.invoke(app, [*args, "--json"])
    assert r.exit_code == 0, r.output
    ans = json.loads(r.output)
    assert ans["model_id"] == "transformers:tiny-lm" and ans["answer"].strip()
    assert ans["prompt"].startswith("grounded-answer@1#")
    # a random model does not cite: the answer is flagged, not passed off as grounded
    assert "no_valid_citation" in ans["flags"] or ans["abstained"]
    r = runner.invoke(app, args)  # streaming to the terminal
    assert r.exit_code == 0 and r.output.strip()


def test_transformers_backend_passes_only_what_the_model_takes(make_kb, kb_docs: Path, tmp_path: Path) -> None:
    model = build_tiny_causal_lm(tmp_path / "tiny-lm", token_type_ids=True)  # the tokenizer adds token_type_ids
    kb = str(tmp_path / "kb")
    assert CliRunner().invoke(app, ["--kb", kb, "ingest", str(kb_docs)]).exit_code == 0
    args = ["--kb", kb, "ask", "Where can visitors park?", "--generator", "transformers", "--model-path", str(model)]
    r = CliRunner().invoke(app, [*args, "--json", "--generator", "transformers"])
    assert r.exit_code == 0, r.output
    assert "fallback" not in json.loads(r.output)["flags"]  # the model answered; it did not fail over


def test_transformers_chat_stream_equals_complete(tmp_path: Path) -> None:
    from groundwork.llm.backends.local import TransformersChat

    chat = TransformersChat(
        GeneratorSettings(backend="transformers", model_path=build_tiny_causal_lm(tmp_path / "m"), max_tokens=10)
    )
    msgs = [{"role": "system", "content": "answer"}, {"role": "user", "content": "where can visitors park ?"}]
    pieces = list(chat.stream(msgs))
    assert len(pieces) > 1 and "".join(pieces).strip() == chat.complete(msgs).strip()
    assert chat.count_tokens("visitors park") == 2


def _stubbed_bedrock():
    import boto3
    from botocore.stub import Stubber

    client = boto3.client("bedrock-runtime", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    return client, Stubber(client)


def test_bedrock_converse_through_stubber() -> None:
    client, stub = _stubbed_bedrock()
    settings = GeneratorSettings(backend="bedrock", model="amazon.nova-lite-v1:0", max_tokens=50)
    messages = [{"role": "system", "content": "Use the context."}, {"role": "user", "content": "Where?"}]
    stub.add_response(
        "converse",
        {
            "output": {"message": {"role": "assistant", "content": [{"text": "North car park [1]."}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 12, "outputTokens": 5, "totalTokens": 17},
            "metrics": {"latencyMs": 30},
        },
        expected_params={
            "modelId": "amazon.nova-lite-v1:0",
            "system": [{"text": "Use the context."}],
            "messages": [{"role": "user", "content": [{"text": "Where?"}]}],
            "inferenceConfig": {"maxTokens": 50, "temperature": 0.0},
        },
    )
    stub.add_client_error("converse", service_error_code="ThrottlingException", http_status_code=429)
    stub.add_client_error("converse", service_error_code="AccessDeniedException", http_status_code=403)
    with stub:
        chat = BedrockChat(settings, client=client)
        assert chat.complete(messages) == "North car park [1]."
        with pytest.raises(GeneratorError) as throttled:
            chat.complete(messages)
        assert throttled.value.retryable and "ThrottlingException" in throttled.value.reason
        with pytest.raises(GeneratorError) as denied:
            chat.complete(messages)
        assert not denied.value.retryable
        stub.assert_no_pending_responses()


def test_extractive_stays_the_default(make_kb, kb_docs: Path) -> None:
    kb = make_kb()
    kb.ingest([kb_docs])
    ans = kb.ask("Where can visitors park?")
    assert ans.model_id.startswith("extractive:") and ans.prompt is None and "north car park" in ans.answer
    assert kb.ask("What is the capital of Mongolia?").answer == ABSTAIN_MESSAGE
