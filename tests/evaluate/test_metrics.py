"""Our metric code against an independent implementation (pytrec_eval, trec_eval's C code) on the same
rankings: equal to 1e-6."""

from __future__ import annotations

import random

import pytest
import pytrec_eval

from groundwork.evaluate.metrics import map_at_k, mrr_at_k, multihop_metrics, ndcg_at_k, recall_at_k


def random_run(seed: int) -> tuple[dict, dict]:
    rng = random.Random(seed)
    docs = [f"d{i}" for i in range(60)]
    qrels, run = {}, {}
    for q in range(40):
        rel = rng.sample(docs, rng.randint(1, 6))
        qrels[f"q{q}"] = {d: rng.choice([1, 1, 2, 3]) for d in rel}
        ranked = rng.sample(docs, rng.randint(5, 60))
        run[f"q{q}"] = ranked
    return qrels, run


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_metrics_match_pytrec_eval(seed: int) -> None:
    qrels, run = random_run(seed)
    # trec_eval ranks by score; give strictly decreasing scores so the order is ours.
    scored = {q: {d: float(len(r) - i) for i, d in enumerate(r)} for q, r in run.items()}
    ev = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.10", "recall.100", "recip_rank", "map_cut.10"})
    ref = ev.evaluate(scored)
    for q, ranking in run.items():
        assert ndcg_at_k(ranking, qrels[q], 10) == pytest.approx(ref[q]["ndcg_cut_10"], abs=1e-6)
        assert recall_at_k(ranking, qrels[q], 10) == pytest.approx(ref[q]["recall_10"], abs=1e-6)
        assert recall_at_k(ranking, qrels[q], 100) == pytest.approx(ref[q]["recall_100"], abs=1e-6)
        assert map_at_k(ranking, qrels[q], 10) == pytest.approx(ref[q]["map_cut_10"], abs=1e-6)
        # recip_rank is uncut; cut at 10 it agrees whenever the first relevant doc is in the top 10
        first = next((i for i, d in enumerate(ranking, 1) if qrels[q].get(d, 0) > 0), None)
        expected = ref[q]["recip_rank"] if first and first <= 10 else 0.0
        assert mrr_at_k(ranking, qrels[q], 10) == pytest.approx(expected, abs=1e-6)


def test_multihop_metrics_follow_the_official_definition() -> None:
    facts = ["Alpha beta gamma.", "Delta  epsilon.\n", "Zeta eta."]
    retrieved = (
        [
            "nothing here",
            "xx Alphabeta gamma. yy",  # fact 1 (spaces removed on both sides): rank 2, new
            "Alpha beta gamma. again",  # fact 1 again: relevant, adds 0/3
            "irrelevant",
            "Delta epsilon. and Zeta eta.",  # facts 2 and 3: rank 5, two new
        ]
        + ["filler"] * 6
        + ["Zeta eta. at rank 12 is ignored"]
    )
    m = multihop_metrics(retrieved, facts)
    assert m["hits@10"] == 1.0 and m["hits@4"] == 1.0
    assert m["mrr@10"] == pytest.approx(1 / 2)
    assert m["map@10"] == pytest.approx((1 / 2 + 0 / 3 + 2 / 5) / 3)
    assert multihop_metrics(["x"] * 10, facts) == {"hits@4": 0.0, "hits@10": 0.0, "mrr@10": 0.0, "map@10": 0.0}
