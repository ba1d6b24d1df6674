from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
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
    # LanceDB ranks ids first (RankingStore): hybrid calls its rankings, not the full searches
    keyword, vector, embed = store.keyword_ranking, store.vector_ranking, embedder.embed

    def logged(name, fn):
        def run(*args, **kwargs):
            events.append(f"{name} start")
            try:
                return fn(*args, **kwargs)
            finally:
                events.append(f"{name} end")

        return run

    monkeypatch.setattr(store, "keyword_ranking", logged("keyword", keyword))
    monkeypatch.setattr(store, "vector_ranking", logged("vector", vector))
    monkeypatch.setattr(embedder, "embed", logged("embed", embed))
    hits = kb.search("electricity from sunlight", mode="hybrid", top_k=4)
    assert [h.chunk.chunk_id for h in hits] == expected
    assert events.index("embed end") < events.index("keyword start")
    assert {"keyword end", "vector end"} <= set(events)


def _same_hits(a: list, b: list) -> bool:
    """Equal rankings: chunk ids, order, fused and per-list scores, relevance, and every chunk field."""
    key = [(h.chunk.chunk_id, h.score, h.rank, h.scores, h.relevance) for h in a]
    if key != [(h.chunk.chunk_id, h.score, h.rank, h.scores, h.relevance) for h in b]:
        return False
    for x, y in zip(a, b):
        fields = {k: v for k, v in vars(x.chunk).items() if k != "vector"}
        if fields != {k: v for k, v in vars(y.chunk).items() if k != "vector"}:
            return False
        if not np.array_equal(x.chunk.vector, y.chunk.vector):
            return False
    return True


@pytest.fixture(scope="module")
def tenant_kb(tmp_path_factory: pytest.TempPathFactory):
    """One real knowledge base (the bundled MiniLM): the four texts public, and again for tenants."""
    from groundwork import KnowledgeBase, load_settings

    root = tmp_path_factory.mktemp("ranking")
    for name, text in TEXTS.items():
        write(root / "docs" / name, f"# {name}\n\n{text}\n")
        write(root / "one" / name, f"# {name}\n\n{text} Tenant one copy.\n")
        write(root / "two" / name, f"# {name}\n\n{text} Tenant two copy, hr only.\n")
    # the embedding cache on: each test question is encoded once, however many searches repeat it
    overrides = {"embedder.cache_dir": root / "embeddings", "cache.enabled": False}
    kb = KnowledgeBase(settings=load_settings(kb=root / "kb", **overrides))
    kb.ingest([root / "docs"])
    kb.ingest([root / "one"], tenant="one")
    kb.ingest([root / "two"], tenant="two", allowed_groups=["hr"])
    return kb


@pytest.mark.slow
@pytest.mark.parametrize("fusion", ["rrf", "convex", "adaptive"])
def test_hybrid_reading_only_the_kept_rows_ranks_as_reading_every_row(tenant_kb, fusion: str, monkeypatch) -> None:
    """Late materialisation changes what is read, not what is returned: the same hits, scores and
    chunks as fusing two fully read lists, under every access view and a filter; and only top_k rows
    are read."""
    from groundwork.retrieve.retriever import Retriever
    from groundwork.types import Access

    kb = tenant_kb
    settings = kb.settings.retrieval.model_copy(update={"fusion": fusion})
    late = Retriever(kb.store, kb.embedder, settings)
    full = Retriever(kb.store, kb.embedder, settings)
    full.late_rows = False
    assert late.late_rows
    read: list[int] = []
    chunks_at = kb.store.chunks_at
    monkeypatch.setattr(kb.store, "chunks_at", lambda refs: read.append(len(refs)) or chunks_at(refs))
    views = [None, Access(), Access("one"), Access("two", ("hr",))]
    for q in ("electricity from sunlight", "insects producing sweet food", "tenant copy"):
        for access in views:
            for top_k, where in ((1, None), (20, None), (5, "source != 'x'")):
                a = late.retrieve(q, "hybrid", top_k, where, access).hits
                assert read[-1] == len(a) <= top_k  # (the full lists' vector search reads by ref too)
                b = full.retrieve(q, "hybrid", top_k, where, access).hits
                assert _same_hits(a, b), (q, access, top_k)
    seen = {h.chunk.tenant for h in late.retrieve("electricity", "hybrid", 20, None, Access("one")).hits}
    assert seen == {"one"}  # the tenant's own documents only (public ones need Access(None))
    assert not late.retrieve("electricity", "hybrid", 20, None, Access("two")).hits  # hr-only, no group


def test_hybrid_searches_again_when_a_write_moves_a_kept_row(tenant_kb, monkeypatch) -> None:
    """A write between the ranking and the read of the kept rows (here: the document replaced right
    after the keyword ranking) is detected, and the search runs again on whole rows: the hits are
    those of the index after the write, never a row the write removed."""
    from groundwork.retrieve.retriever import Retriever

    kb = tenant_kb
    late = Retriever(kb.store, kb.embedder, kb.settings.retrieval)
    full = Retriever(kb.store, kb.embedder, kb.settings.retrieval)
    full.late_rows = False
    ranking, chunks_at = kb.store.keyword_ranking, kb.store.chunks_at
    doc = next(d for d in kb.store.list_documents() if d.source.endswith("docs/a.md"))
    old = kb.store.document_chunks(doc.doc_id)[0]
    text = "Solar panels, rewritten."
    new = dataclasses.replace(old, text=text, content_hash="rewritten", vector=kb.embedder.embed([text])[0])
    read: list[bool] = []

    def ranking_then_write(*args):
        refs = ranking(*args)
        with kb.store.writing("test"):
            kb.store.replace_documents({doc.doc_id: "rewritten"}, [new], doc.pipeline_hash)
        return refs

    monkeypatch.setattr(kb.store, "keyword_ranking", ranking_then_write)
    monkeypatch.setattr(kb.store, "chunks_at", lambda refs: read.append((c := chunks_at(refs)) is not None) or c)
    hits = late.retrieve("solar panels sunlight", "hybrid", 4).hits
    monkeypatch.undo()
    # the replaced row was not read; the search ran again on whole lists (whose exact vector search
    # reads its rows by ref too, from the index after the write)
    assert read == [False, True]
    assert _same_hits(hits, full.retrieve("solar panels sunlight", "hybrid", 4).hits)
    assert [h.chunk.text for h in hits if h.chunk.doc_id == doc.doc_id] == [text]


def test_the_keyword_search_runs_while_the_query_is_embedded_when_the_encoder_leaves_a_core(
    tenant_kb, monkeypatch
) -> None:
    """With embedder.threads below the core count, hybrid search starts the keyword search before
    the query is embedded (the two overlap), and returns the same hits as the default order."""
    import threading
    from types import SimpleNamespace

    from groundwork.retrieve import retriever as module
    from groundwork.retrieve.retriever import Retriever

    monkeypatch.setattr(module.os, "cpu_count", lambda: 2)
    rule = {
        t: Retriever(tenant_kb.store, SimpleNamespace(settings=SimpleNamespace(threads=t))).keyword_first
        for t in (None, 1, 2)
    }
    assert rule == {None: False, 1: True, 2: False}

    kb = tenant_kb
    default = Retriever(kb.store, kb.embedder, kb.settings.retrieval)
    early = Retriever(kb.store, kb.embedder, kb.settings.retrieval)
    early.keyword_first = True
    started, overlapped = threading.Event(), []
    ranking, embed = kb.store.keyword_ranking, kb.embedder.embed

    def keyword_ranking(*args):
        started.set()
        return ranking(*args)

    def embed_waiting(texts):
        overlapped.append(started.wait(timeout=10))  # the keyword search began before this returned
        return embed(texts)

    monkeypatch.setattr(kb.store, "keyword_ranking", keyword_ranking)
    monkeypatch.setattr(kb.embedder, "embed", embed_waiting)
    hits = early.retrieve("solar panels sunlight", "hybrid", 5).hits
    assert overlapped == [True]
    monkeypatch.undo()
    assert _same_hits(hits, default.retrieve("solar panels sunlight", "hybrid", 5).hits)
