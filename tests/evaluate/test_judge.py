"""LLM-as-judge through the openai backend against a local Chat Completions server."""

from __future__ import annotations

import json
from pathlib import Path

from groundwork.evaluate.answers import evaluate_answers
from groundwork.evaluate.datasets import load_eval_set
from tests.chat_server import ChatServer
from tests.conftest import write


def _eval_set(tmp_path: Path) -> Path:
    write(
        tmp_path / "docs" / "parking.md",
        "# Parking\n\nVisitors park in the north car park, next to the main entrance.\n",
    )
    rows = [
        {"corpus": "docs"},
        {"question": "Where do visitors park?", "answer": "the north car park", "sources": ["parking.md"]},
        {"question": "Where can guests leave their car?", "answer": "the north car park", "sources": ["parking.md"]},
    ]
    return write(tmp_path / "set.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")


def test_judge_scores_retries_malformed_and_counts_failures(make_kb, tmp_path: Path) -> None:
    calls = {"judge": 0}

    def reply(messages: list[dict]) -> str:
        if messages[0]["content"].startswith("You grade an answer"):
            calls["judge"] += 1
            if calls["judge"] == 1:
                return "Sure! The answer looks right."  # malformed: retried
            if calls["judge"] == 2:
                return 'Here: {"correctness": 4, "relevance": 5, "reason": "Names the north car park."}'
            return '{"correctness": 9, "relevance": 5, "reason": "out of range"}'  # invalid every time
        return "Visitors park in the north car park [1]."

    dataset = load_eval_set(_eval_set(tmp_path))
    with ChatServer(reply) as server:
        kb = make_kb(**{"generator.backend": "openai", "generator.model": "m", "generator.base_url": server.base_url})
        kb.ingest(dataset.corpus)
        out = evaluate_answers(dataset, kb, bertscore=False)
    assert out["judge_correctness"] == 4 and out["judge_relevance"] == 5
    assert out["judge_failures"] == 1 and out["judge_retries"] == 1 + 2  # one retry, then 2 retries that all fail
    assert calls["judge"] == 2 + 3
    assert out["judge_examples"][0]["reason"] == "Names the north car park."
    assert out["containment"] == 1.0 and "openai:m" in out["llm_judge"]


def test_no_judge_without_an_llm(make_kb, tmp_path: Path) -> None:
    dataset = load_eval_set(_eval_set(tmp_path))
    kb = make_kb()
    kb.ingest(dataset.corpus)
    out = evaluate_answers(dataset, kb, bertscore=False)
    assert "judge_correctness" not in out and out["llm_judge"].startswith("skipped")


def test_containment_is_whole_words_and_abstentions_contain_nothing() -> None:
    from groundwork.evaluate.answers import contains_answer

    assert contains_answer("No", "No, the report did not say so.") == 1.0
    assert contains_answer("No", "I could not find this in the indexed documents.") == 0.0  # "no" inside "not"
    assert contains_answer("1", "The budget is 1500 tokens.") == 0.0
    assert contains_answer("north car park", "Visitors use the North  car park [1].") == 1.0
    assert contains_answer("north car park", "north car park", abstained=True) == 0.0
