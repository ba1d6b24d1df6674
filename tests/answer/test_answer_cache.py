"""The answer cache's two tiers on a real SQLite file: a stored answer comes back whole (wire fields,
retrieved chunk ids), never past its TTL even from another process's table, and a fallback's answer
is not stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from groundwork.answer import cache as answer_cache
from groundwork.answer.cache import AnswerCache
from groundwork.state.cache import SqliteAnswerCache
from groundwork.types import Answer, Chunk, Citation, GuardDecision, SearchHit, TokenUsage


def answer(flags: list[str] | None = None) -> Answer:
    chunk = Chunk("d::0", "d", "docs/d.md", 0, "The allowance is £40.", "h")
    return Answer(
        "What is the allowance?",
        "The allowance is £40. [1]",
        False,
        [Citation(1, "d", "d::0", "docs/d.md", 0.9, "The allowance is £40.")],
        {"total": 12.0},
        hits=[SearchHit(chunk, 0.9, 1)],
        answer_id="a" * 32,
        search_query="What is the allowance?",
        model_id="extractive:m",
        guardrails=[GuardDecision("pii", "output", "flagged", "email", None, ["EMAIL"])],
        flags=flags or [],
        index_version=3,
        usage=TokenUsage(20, 8, 0.0, "tokenizer"),
    )


def test_a_stored_answer_comes_back_whole_from_the_table_and_expires(tmp_path: Path, monkeypatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(answer_cache.time, "time", lambda: clock[0])
    monkeypatch.setattr("groundwork.state.cache.time.time", lambda: clock[0])
    table = tmp_path / "cache.sqlite"
    AnswerCache(SqliteAnswerCache(table, 10, 60), "h", 10, 60).put("k", answer())
    other = AnswerCache(SqliteAnswerCache(table, 10, 60), "h", 10, 60)  # another process: empty memory
    got = other.get("k")
    assert got is not None and got.to_dict() == answer().to_dict() | {"timings_ms": {}}  # a hit has its own timings
    assert [(h.chunk.chunk_id, h.score) for h in got.hits] == [("d::0", 0.9)] and got.question == answer().question
    clock[0] += 59
    assert other.get("k") is not None  # now in the process's memory too
    clock[0] += 2
    assert other.get("k") is None  # past the TTL since it was first stored, in memory or not
    assert (other.counter.hits, other.counter.misses) == (2, 1)


def test_a_fallback_answer_is_not_stored(tmp_path: Path) -> None:
    cache = AnswerCache(SqliteAnswerCache(tmp_path / "cache.sqlite", 10, 60), "h", 10, 60)
    cache.put("k", answer(["fallback"]))
    assert cache.get("k") is None


@pytest.mark.parametrize("groups", [("hr",), ("eng",), ("hr", "eng")])
def test_the_key_differs_by_access_view_and_not_by_case_or_spacing(groups: tuple[str, ...]) -> None:
    from groundwork.types import Access

    def key(q: str, access: Access | None) -> str:
        return answer_cache.answer_key(q, "hybrid", 6, None, None, access, "h", 3)

    base = key("What is X?", Access("acme", ("hr",)))
    same = key("  what is  x? ", Access("acme", ("hr",)))
    assert base == same
    if groups != ("hr",):
        assert key("What is X?", Access("acme", groups)) != base
    assert key("What is X?", Access("globex", ("hr",))) != base and key("What is X?", None) != base
    assert answer_cache.answer_key("What is X?", "hybrid", 6, None, None, Access("acme", ("hr",)), "h", 4) != base
