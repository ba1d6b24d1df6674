from __future__ import annotations

import pytest

from groundwork.retrieve.fusion import convex_fusion, fuse_scores, length_weights, rrf_fusion
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


def test_zscore_scales_by_the_spread_of_each_list() -> None:
    bm25 = [("a", 12.0), ("b", 10.0), ("c", 8.0)]  # mean 10, population sd sqrt(8/3)
    fused = dict(fuse_scores({"bm25": bm25}, "zscore"))
    sd = (8 / 3) ** 0.5
    assert fused["a"] == pytest.approx(4 / sd) and fused["b"] == pytest.approx(2 / sd) and fused["c"] == 0.0


def test_dbsf_bounds_are_mean_plus_minus_three_sd() -> None:
    dense = [("a", 0.9), ("b", 0.5), ("c", 0.1)]
    mean, sd = 0.5, (0.32 / 3) ** 0.5
    fused = dict(fuse_scores({"dense": dense}, "dbsf"))
    assert fused["b"] == pytest.approx(0.5)  # the mean sits in the middle of [mean - 3 sd, mean + 3 sd]
    assert fused["a"] == pytest.approx((0.9 - (mean - 3 * sd)) / (6 * sd))


def test_combmnz_rewards_chunks_both_lists_found() -> None:
    lists = {"bm25": [("a", 3.0), ("b", 2.0), ("c", 1.0)], "dense": [("b", 0.8), ("d", 0.2)]}
    convex = dict(fuse_scores(lists, "convex"))
    mnz = dict(fuse_scores(lists, "combmnz"))
    assert mnz["b"] == pytest.approx(2 * convex["b"]) and mnz["a"] == pytest.approx(convex["a"])
    assert fuse_scores(lists, "combmnz")[0][0] == "b"


def test_adaptive_weights_the_list_whose_top_stands_out() -> None:
    peaked = [("a", 10.0)] + [(f"p{i}", 1.0) for i in range(9)] + [("z", 0.0)]
    flat = [("b", 1.0)] + [(f"f{i}", 0.99) for i in range(9)] + [("y", 0.0)]
    fused = fuse_scores({"bm25": peaked, "dense": flat}, "adaptive")
    assert fused[0][0] == "a"  # with equal weights, convex ties a and b; the peaked list wins here
    assert dict(fuse_scores({"bm25": peaked, "dense": flat}, "convex"))["a"] == pytest.approx(1.0)


def test_length_weights_move_towards_bm25_for_long_questions() -> None:
    assert length_weights(0.5, 0.5, 10, None, 15, 40) == {"bm25": 0.5, "dense": 0.5}
    assert length_weights(0.5, 0.5, 10, 0.8, 15, 40) == {"bm25": 0.5, "dense": 0.5}
    mid = length_weights(0.5, 0.5, 27.5, 0.8, 15, 40)  # halfway: share 0.65
    assert mid["bm25"] == pytest.approx(0.65) and mid["dense"] == pytest.approx(0.35)
    assert length_weights(1.0, 1.0, 60, 0.8, 15, 40) == pytest.approx({"bm25": 1.6, "dense": 0.4})


def test_unknown_fusion_is_refused() -> None:
    with pytest.raises(ValueError, match="fusion must be one of"):
        fuse_scores({"bm25": [("a", 1.0)]}, "borda")
