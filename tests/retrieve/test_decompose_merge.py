"""How a decomposed question's lists share the top-k: round-robin interleaving and coverage."""

from __future__ import annotations

from groundwork.retrieve.decompose import HeuristicDecomposer, coverage, interleave
from groundwork.types import Chunk, SearchHit


def hits(*ids: str) -> list[SearchHit]:
    return [SearchHit(Chunk(c, "d", "s", 0, c, "h"), score=10.0 - r, rank=r) for r, c in enumerate(ids, 1)]


def ids(hs: list[SearchHit]) -> list[str]:
    return [h.chunk.chunk_id for h in hs]


def test_interleave_takes_turns_question_first_each_chunk_once() -> None:
    merged = interleave([hits("a", "b", "c"), hits("x", "a", "y"), hits("p")], depth=5)
    assert ids(merged) == ["a", "x", "p", "b", "c"]  # "a" again in list 2 is skipped
    assert [h.rank for h in merged] == [1, 2, 3, 4, 5]
    assert [h.score for h in merged] == sorted((h.score for h in merged), reverse=True)


def test_coverage_keeps_the_question_ranking_and_a_place_per_sub_question() -> None:
    main = hits("a", "b", "c", "d", "e")
    merged = coverage(main, [hits("b", "x"), hits("y", "z")], top_k=4, slots=1, depth=6)
    # x (best of sub 1 not in the top 4) and y take the last two of the 4 places; c, d follow
    assert ids(merged) == ["a", "b", "x", "y", "c", "d"]
    assert ids(coverage(main, [hits("x", "y")], top_k=4, slots=2, depth=4)) == ["a", "b", "x", "y"]
    # a sub-question whose best chunks are already in the top_k adds nothing
    assert ids(coverage(main, [hits("a", "c")], top_k=3, slots=1, depth=3)) == ["a", "b", "c"]


def test_a_two_part_question_splits_at_and_how() -> None:
    parts = HeuristicDecomposer().decompose("how many remote days, and how do I connect?")
    assert parts == ["how many remote days", "how do I connect"]
