from __future__ import annotations

import numpy as np

from groundwork.answer.context import assemble_context
from groundwork.types import Chunk, SearchHit


def hit(cid: str, text: str, vec=None, parent=None, parent_text=None) -> SearchHit:
    c = Chunk(cid, "d", "s", 0, text, "h", vector=vec, parent_id=parent, parent_text=parent_text)
    return SearchHit(c, 1.0, 1)


def words(text: str) -> int:
    return len(text.split())


def test_budget_near_duplicates_and_numbering() -> None:
    v = np.array([1.0, 0.0], dtype=np.float32)
    w = np.array([0.0, 1.0], dtype=np.float32)
    hits = [
        hit("a", "one two three", v),
        hit("b", "One  two three", w),  # same text up to case/space: dropped
        hit("c", "near copy of a", v * 0.999),  # cosine ~1 with a: dropped
        hit("d", "x " * 20, w),  # too big for what is left: skipped
        hit("e", "four five", w),
    ]
    ctx = assemble_context(hits, words, budget_tokens=6, dedup_similarity=0.95)
    assert [c.hit.chunk.chunk_id for c in ctx] == ["a", "e"]
    assert [c.n for c in ctx] == [1, 2] and sum(c.tokens for c in ctx) <= 6


def test_parent_text_replaces_children_once() -> None:
    hits = [
        hit("c1", "child one", parent="p1", parent_text="the whole parent"),
        hit("c2", "child two", parent="p1", parent_text="the whole parent"),
    ]
    ctx = assemble_context(hits, words, budget_tokens=100)
    assert [c.text for c in ctx] == ["the whole parent"]
