"""Decomposition, reranking and follow-up rewriting, on real indexes and the real embedder."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from groundwork.retrieve.conversation import is_follow_up, rewrite_question
from groundwork.retrieve.decompose import HeuristicDecomposer
from groundwork.retrieve.rerank import CrossEncoderReranker, MMRReranker
from tests.conftest import write
from tests.tiny_models import build_tiny_cross_encoder

DOCS = {
    "verge.md": "# The Verge\n\nThe Verge reported that Acme Robotics recalled its warehouse robot after a battery fire.\n",
    "techcrunch.md": "# TechCrunch\n\nTechCrunch reported that Globex raised 40 million dollars to build solar farms.\n",
    "dup1.md": "# Robots\n\nAcme Robotics recalled its warehouse robot after a battery fire, The Verge said.\n",
    "dup2.md": "# Robots again\n\nAfter a battery fire, Acme Robotics recalled the warehouse robot, according to The Verge.\n",
}


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    for name, text in DOCS.items():
        write(tmp_path / "docs" / name, text)
    return tmp_path / "docs"


def test_heuristic_decomposition_splits_comparisons() -> None:
    d = HeuristicDecomposer()
    assert d.decompose(
        "Did The Verge report a robot recall, while TechCrunch reported a funding round for solar farms?"
    ) == ["Did The Verge report a robot recall", "TechCrunch reported a funding round for solar farms"]
    parts = d.decompose(
        "Between the Verge article on the robot recall published in May, and the TechCrunch article on "
        "solar funding published in June, was the reporting consistent?"
    )
    assert len(parts) == 2 and all("was the reporting consistent" in p for p in parts)
    assert d.decompose("Where do visitors park?") == []


def test_decomposed_retrieval_finds_evidence_for_both_parts(make_kb, docs: Path) -> None:
    q = "Did The Verge report a robot recall by Acme, while TechCrunch reported that Globex raised money for solar farms?"
    single = make_kb("single")
    single.ingest([docs])
    multi = make_kb("multi", **{"retrieval.decompose": "heuristic"})
    multi.ingest([docs])
    top2 = lambda kb: {Path(h.chunk.source).name for h in kb.search(q, top_k=2)}  # noqa: E731
    assert top2(multi) == {"verge.md", "techcrunch.md"}  # one hit per sub-question
    ans = multi.ask(q)
    assert len(ans.sub_questions) == 2 and ans.search_query == q


def test_mmr_reranker_trades_near_duplicates_for_diversity(make_kb, docs: Path, embedder) -> None:
    kb = make_kb()
    kb.ingest([docs])
    q = "Acme Robotics robot recall battery fire"
    hits = kb.search(q, top_k=4)
    plain = [Path(h.chunk.source).name for h in hits[:2]]
    assert set(plain) <= {"verge.md", "dup1.md", "dup2.md"}  # relevance alone: two near-duplicates
    reranked = MMRReranker(embedder, mmr_lambda=0.3).rerank(q, hits, 2)
    assert [h.rank for h in reranked] == [1, 2] and reranked[0].chunk.chunk_id == hits[0].chunk.chunk_id
    assert Path(reranked[1].chunk.source).name == "techcrunch.md"
    mmr_kb = make_kb("mmr", **{"rerank.method": "mmr", "rerank.mmr_lambda": 0.3})
    mmr_kb.ingest([docs])
    assert "techcrunch.md" in {Path(h.chunk.source).name for h in mmr_kb.search(q, top_k=2)}


def test_cross_encoder_reranker_orders_by_model_score(make_kb, docs: Path, tmp_path: Path) -> None:
    model = build_tiny_cross_encoder(tmp_path / "tiny-ce")
    kb = make_kb(**{"rerank.method": "cross-encoder", "rerank.model_path": str(model)})
    kb.ingest([docs])
    hits = kb.search("robot recall", top_k=3)
    assert len(hits) == 3 and [h.rank for h in hits] == [1, 2, 3]
    scores = [h.scores["cross_encoder"] for h in hits]
    assert scores == sorted(scores, reverse=True)
    ce = CrossEncoderReranker(model)
    direct = ce.model.predict([("robot recall", h.chunk.search_text) for h in hits])
    assert [round(float(s), 5) for s in direct] == [round(s, 5) for s in scores]


def test_reranker_scores_only_its_window_and_deeper_hits_follow_in_order(make_kb, docs: Path) -> None:
    """top_k above rerank.depth (recall@100, a long document list): the reranker scores the first
    ``depth`` hits only; the others follow in first-stage order, below every reranked hit."""
    from groundwork.retrieve.pipeline import SearchPipeline

    seen: list[int] = []

    class Reverse:  # reverses its window: any reordering shows where the window ends
        name = "reverse"

        def rerank(self, query, hits, top_k):
            seen.append(len(hits))
            out = list(reversed(hits))[:top_k]
            return [replace(h, rank=i + 1, score=10.0 - i) for i, h in enumerate(out)]

    kb = make_kb()
    kb.ingest([docs])
    plain = kb.search("robot recall battery fire", mode="hybrid", top_k=4)
    assert len(plain) == 4
    pipeline = SearchPipeline(kb.pipeline.retriever, Reverse(), None, rerank_depth=2)
    hits = pipeline.search("robot recall battery fire", mode="hybrid", top_k=4).hits
    assert seen == [2]  # not 4
    ids = [h.chunk.chunk_id for h in plain]
    assert [h.chunk.chunk_id for h in hits] == [ids[1], ids[0], ids[2], ids[3]]
    assert [h.rank for h in hits] == [1, 2, 3, 4]
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True) and hits[2].score < 9.0
    assert hits[2].scores == plain[2].scores  # the first-stage scores kept
    assert pipeline.search("robot recall battery fire", mode="hybrid", top_k=2).hits[0].chunk.chunk_id == ids[1]


def test_follow_up_rewriting() -> None:
    history = [
        {"role": "user", "content": "Where do visitors park?"},
        {"role": "assistant", "content": "North car park [1]."},
    ]
    assert is_follow_up("Is it free?") and not is_follow_up("What are the canteen opening hours on weekdays?")
    assert rewrite_question("Is it free?", history) == "Is it free? (Where do visitors park?)"
    assert (
        rewrite_question("What are the canteen opening hours on weekdays?", history)
        == "What are the canteen opening hours on weekdays?"
    )
    assert rewrite_question("Is it free?", []) == "Is it free?"


def test_follow_up_in_ask_uses_history(make_kb, tmp_path: Path) -> None:
    write(
        tmp_path / "d" / "parking.md",
        "# Parking\n\nVisitors park in the north car park. Parking there is free for visitors.\n",
    )
    write(tmp_path / "d" / "canteen.md", "# Canteen\n\nThe canteen is free for staff on Fridays.\n")
    kb = make_kb()
    kb.ingest([tmp_path / "d"])
    ans = kb.ask("Is it free?", history=[{"role": "user", "content": "Where do visitors park?"}])
    assert ans.search_query == "Is it free? (Where do visitors park?)"
    assert ans.citations and ans.citations[0].source.endswith("parking.md")
