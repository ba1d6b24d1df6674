from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import write

TEXTS = {
    "a.md": "Solar panels convert sunlight into electricity for the home.",
    "b.md": "Wind turbines turn moving air into electricity on the coast.",
    "c.md": "Electricity prices rose sharply during the winter months.",
    "d.md": "Bees make honey from the nectar of flowers in spring.",
}


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    for name, text in TEXTS.items():
        write(tmp_path / "docs" / name, f"# {name}\n\n{text}\n")
    return tmp_path / "docs"


@pytest.mark.parametrize("fusion", ["rrf", "convex", "adaptive"])
def test_zero_dense_weight_reproduces_bm25_order(make_kb, docs: Path, fusion: str) -> None:
    kb = make_kb(**{"retrieval.fusion": fusion, "retrieval.dense_weight": 0.0})
    kb.ingest([docs])
    bm25 = [h.chunk.chunk_id for h in kb.search("electricity from sunlight", mode="bm25", top_k=3)]
    hybrid = [h.chunk.chunk_id for h in kb.search("electricity from sunlight", mode="hybrid", top_k=3)]
    assert hybrid == bm25
    hit = kb.search("electricity from sunlight", mode="hybrid", top_k=1)[0]
    assert set(hit.scores) == {"bm25", "dense"}  # both retrievers' own scores are kept


def test_hybrid_finds_what_only_dense_finds(make_kb, docs: Path) -> None:
    kb = make_kb()
    kb.ingest([docs])
    # no word of the query occurs in d.md, so BM25 cannot find it; the dense side can
    q = "insects producing sweet food"
    assert all(not h.chunk.source.endswith("d.md") for h in kb.search(q, mode="bm25", top_k=4))
    assert kb.search(q, mode="hybrid", top_k=1)[0].chunk.source.endswith("d.md")


def test_hybrid_starts_the_keyword_search_after_the_query_is_embedded(make_kb, docs: Path, monkeypatch) -> None:
    """The keyword search beside the encoder took CPU from its threads (bench/hybrid_latency.py):
    it starts once the vector exists, and runs beside the vector search."""
    kb = make_kb(**{"embedder.cache": False, "cache.enabled": False})  # the same search runs twice
    kb.ingest([docs])
    expected = [h.chunk.chunk_id for h in kb.search("electricity from sunlight", mode="hybrid", top_k=4)]
    events: list[str] = []
    store, embedder = kb.store, kb.embedder
    keyword, vector, embed = store.keyword_search, store.vector_search, embedder.embed

    def logged(name, fn):
        def run(*args, **kwargs):
            events.append(f"{name} start")
            try:
                return fn(*args, **kwargs)
            finally:
                events.append(f"{name} end")

        return run

    monkeypatch.setattr(store, "keyword_search", logged("keyword", keyword))
    monkeypatch.setattr(store, "vector_search", logged("vector", vector))
    monkeypatch.setattr(embedder, "embed", logged("embed", embed))
    hits = kb.search("electricity from sunlight", mode="hybrid", top_k=4)
    assert [h.chunk.chunk_id for h in hits] == expected
    assert events.index("embed end") < events.index("keyword start")
    assert {"keyword end", "vector end"} <= set(events)
