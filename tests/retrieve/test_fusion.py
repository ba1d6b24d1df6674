from __future__ import annotations

import pytest

from groundwork.retrieve.fusion import convex_fusion, rrf_fusion
from groundwork.types import Chunk, SearchHit


def hits(name: str, ids_scores: list[tuple[str, float]]) -> list[SearchHit]:
    return [
        SearchHit(Chunk(cid, "d", "s", 0, cid, "h"), score=s, rank=r, scores={name: s})
        for r, (cid, s) in enumerate(ids_scores, 1)
    ]


def test_rrf_matches_the_formula() -> None:
    lists = {
        "bm25": hits("bm25", [("a", 9.0), ("b", 5.0), ("c", 1.0)]),
        "dense": hits("dense", [("c", 0.9), ("a", 0.8)]),
    }
    fused = rrf_fusion(lists, k=60)
    score = {h.chunk.chunk_id: h.score for h in fused}
    assert score["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert score["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert score["b"] == pytest.approx(1 / 62)
    assert [h.chunk.chunk_id for h in fused] == ["a", "c", "b"]
    assert [h.rank for h in fused] == [1, 2, 3]
    assert fused[0].scores == {"bm25": 9.0, "dense": 0.8}


def test_rrf_weights_change_the_order() -> None:
    lists = {"bm25": hits("bm25", [("a", 1.0), ("b", 0.5)]), "dense": hits("dense", [("b", 0.9), ("a", 0.1)])}
    assert rrf_fusion(lists, weights={"dense": 2.0})[0].chunk.chunk_id == "b"


def test_convex_fusion_normalises_each_list() -> None:
    lists = {"bm25": hits("bm25", [("a", 30.0), ("b", 10.0)]), "dense": hits("dense", [("b", 0.9), ("a", 0.5)])}
    fused = {h.chunk.chunk_id: h.score for h in convex_fusion(lists)}
    assert fused == {"a": pytest.approx(1.0), "b": pytest.approx(1.0)}
    fused = {h.chunk.chunk_id: h.score for h in convex_fusion(lists, weights={"bm25": 0.3, "dense": 0.7})}
    assert fused["b"] == pytest.approx(0.7) and fused["a"] == pytest.approx(0.3)
