"""Results grouped by document, on real indexes and the real embedder: a document with many matching
chunks takes one place, the list holds top_k distinct documents, and access control still applies."""

from __future__ import annotations

from pathlib import Path

import pytest

from groundwork.retrieve.grouping import group_by_document
from groundwork.types import Access, Chunk, SearchHit
from tests.conftest import write

QUERY = "solar panels on the roof produce electricity"
# Small fixed windows: the long document becomes many chunks, each about solar panels.
SETTINGS = {"chunking.strategy": "fixed", "chunking.chunk_tokens": 32, "chunking.overlap_tokens": 0}
SHORT = [
    "Wind turbines on the coast produce electricity for the town.",
    "Electricity prices rose during the winter months.",
    "The roof of the old barn was repaired after the storm.",
    "Bees make honey from the nectar of flowers in spring.",
    "A heat pump warms the house with electricity.",
    "Hydroelectric dams turn flowing water into power.",
    "The garden shed has a small battery for the lights.",
    "Panels of experts discussed the city budget on Tuesday.",
]


def _long_document() -> str:
    parts = [
        f"Solar panels on the roof produce electricity on day {i}; the solar roof panels made {i + 3} kilowatt hours."
        for i in range(16)
    ]
    return "# Solar diary\n\n" + "\n\n".join(parts) + "\n"


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    write(tmp_path / "docs" / "long.md", _long_document())
    for i, text in enumerate(SHORT):
        write(tmp_path / "docs" / f"short{i}.md", f"# Note {i}\n\n{text}\n")
    return tmp_path / "docs"


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_a_document_with_many_matching_chunks_takes_one_place(make_kb, corpus: Path, mode: str) -> None:
    # candidates = 4: the first ranked list is only long.md's chunks, so grouping has to look deeper
    kb = make_kb(**SETTINGS, **{"retrieval.candidates": 4})
    kb.ingest([corpus])
    chunks = kb.search(QUERY, mode=mode, top_k=5)
    assert sum(Path(h.chunk.source).name == "long.md" for h in chunks) >= 4  # the problem: one document, most places

    docs = kb.search_documents(QUERY, mode=mode, top_k=5)
    names = [Path(d.source).name for d in docs]
    assert len(names) == len(set(names)) == 5  # even bm25 finds 5 documents sharing a query word
    assert names[0] == "long.md" and [d.rank for d in docs] == list(range(1, len(docs) + 1))
    long = docs[0]
    assert len(long.passages) == 3 and long.matched > 3
    assert {Path(p.chunk.source).name for p in long.passages} == {"long.md"}
    assert [p.chunk.chunk_id for p in long.passages] == [h.chunk.chunk_id for h in chunks[:3]]
    assert long.score == long.passages[0].score  # a document scores as its best chunk
    assert [d.score for d in docs] == sorted((d.score for d in docs), reverse=True)


def test_grouped_list_has_top_k_documents_when_the_index_holds_that_many(make_kb, corpus: Path) -> None:
    kb = make_kb(**SETTINGS, **{"retrieval.candidates": 4})
    kb.ingest([corpus])
    docs = kb.search_documents(QUERY, mode="dense", top_k=len(SHORT))
    assert len({d.doc_id for d in docs}) == len(SHORT)
    everything = kb.search_documents(QUERY, mode="dense", top_k=100)  # more than there are: all of them
    assert len({d.doc_id for d in everything}) == len(SHORT) + 1 == len(everything)
    assert sum(d.matched for d in everything) == kb.count_chunks()


def test_group_max_chunks_bounds_the_search(make_kb, corpus: Path) -> None:
    kb = make_kb(**SETTINGS, **{"retrieval.candidates": 4, "retrieval.group_max_chunks": 5})
    kb.ingest([corpus])
    # the best 5 chunks are long.md's and the search may not look deeper: fewer than top_k documents
    docs = kb.search_documents(QUERY, mode="dense", top_k=5)
    assert [Path(d.source).name for d in docs] == ["long.md"]
    assert kb.pipeline.search_documents(QUERY, mode="dense", top_k=5).chunks == 5


def test_grouped_results_keep_the_callers_access(make_kb, corpus: Path, tmp_path: Path) -> None:
    kb = make_kb(**SETTINGS)
    kb.ingest([corpus / "long.md"], tenant="acme")
    other = tmp_path / "other"
    for i in range(3):
        write(other / f"note{i}.md", f"# Note\n\n{SHORT[i]}\n")
    kb.ingest([other], tenant="globex")
    docs = kb.search_documents(QUERY, top_k=10, access=Access(tenant="globex"))
    assert sorted(Path(d.source).name for d in docs) == ["note0.md", "note1.md", "note2.md"]
    assert all(p.chunk.tenant == "globex" for d in docs for p in d.passages)
    assert {Path(d.source).name for d in kb.search_documents(QUERY, top_k=10, access=Access(tenant="acme"))} == {
        "long.md"
    }


def test_group_passages_setting(make_kb, corpus: Path) -> None:
    kb = make_kb(**SETTINGS, **{"retrieval.group_passages": 1})
    kb.ingest([corpus])
    docs = kb.search_documents(QUERY, top_k=3)
    assert [len(d.passages) for d in docs] == [1, 1, 1] and docs[0].matched > 1


def _hit(doc: str, n: int, score: float, rank: int) -> SearchHit:
    chunk = Chunk(chunk_id=f"{doc}:{n}", doc_id=doc, source=doc, position=n, text=f"{doc} {n}", content_hash="h")
    return SearchHit(chunk=chunk, score=score, rank=rank)


def test_max_and_sum2_scores() -> None:
    # a: one strong chunk; b: two good ones; c: one weak one
    hits = [_hit("a", 0, 0.9, 1), _hit("b", 0, 0.8, 2), _hit("b", 1, 0.7, 3), _hit("c", 0, 0.6, 4)]
    by_max = group_by_document(hits, 3)
    assert [(d.doc_id, d.score, d.matched) for d in by_max] == [("a", 0.9, 1), ("b", 0.8, 2), ("c", 0.6, 1)]
    by_sum = group_by_document(hits, 2, score="sum2")
    assert [(d.doc_id, round(d.score, 6)) for d in by_sum] == [("b", 1.5), ("a", 0.9)]
    # equal scores: the document whose best chunk ranks first stays first
    tied = group_by_document([_hit("z", 0, 0.5, 1), _hit("a", 0, 0.5, 2)], 2)
    assert [d.doc_id for d in tied] == ["z", "a"]
    with pytest.raises(ValueError, match="score must be one of"):
        group_by_document(hits, 3, score="mean")
