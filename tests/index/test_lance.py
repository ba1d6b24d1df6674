from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from groundwork.config import EmbedderSettings, IndexSettings
from groundwork.index.lance import LanceStore
from groundwork.types import Chunk


def chunk(doc: str, i: int, text: str, vec: np.ndarray, **meta) -> Chunk:
    return Chunk(
        chunk_id=f"{doc}::{i}",
        doc_id=doc,
        source=f"/src/{doc}",
        position=i,
        text=text,
        content_hash=f"h{doc}{i}",
        metadata=meta,
        vector=vec,
    )


@pytest.fixture
def store(tmp_path: Path) -> LanceStore:
    s = LanceStore(tmp_path / "kb", IndexSettings())
    s.check_model("m", 8)
    return s


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=8).astype(np.float32)
    return v / np.linalg.norm(v)


def test_versions_are_recorded_and_old_storage_cleaned(tmp_path: Path) -> None:
    s = LanceStore(tmp_path / "kb", IndexSettings(version_retention_hours=0))
    s.check_model("m", 8)
    for i in range(5):
        s.replace_documents({f"d{i}": "h"}, [chunk(f"d{i}", 0, f"text {i}", unit(i))], "p")
        s.record_version(1, 0, 0, [f"d{i}"])
    before = len(s._chunks.list_versions())
    s.optimize()
    assert len(s._chunks.list_versions()) < before
    assert [v.version for v in s.list_versions()] == [1, 2, 3, 4, 5]
    assert s.list_versions()[-1].documents == 5 and s.count_chunks() == 5


def test_token_counts_are_not_truncated(embedder) -> None:
    text = "word " * 1000
    assert embedder.count_tokens(text) == 1000
    assert embedder.max_tokens == 254


def test_embedding_cache_avoids_reencoding(tmp_path: Path) -> None:
    from groundwork.index.embedder import load_embedder

    e = load_embedder(EmbedderSettings(), tmp_path)
    v1 = e.embed(["the cat sat", "a dog ran"])
    assert v1.shape == (2, 384) and v1.dtype == np.float32
    assert np.allclose(np.linalg.norm(v1, axis=1), 1.0, atol=1e-5)
    e2 = load_embedder(EmbedderSettings(), tmp_path)
    v2 = e2.embed(["a dog ran", "the cat sat"])
    assert e2.encoded == 0 and np.allclose(v2[1], v1[0])


def test_rankings_are_the_searches_ids_and_kept_rows_are_read_by_ref(store: LanceStore) -> None:
    """vector_ranking / keyword_ranking rank as vector_search / keyword_search (same pre-filters,
    access included) without reading rows; chunks_at reads exactly the rows named, in order, and
    refuses a ref whose row holds another chunk or is gone."""
    from dataclasses import replace

    from groundwork.filters import parse_filter
    from groundwork.index.store import RankingStore
    from groundwork.types import Access

    rows = [
        replace(chunk(f"d{i}", 0, f"solar report {i} panels", unit(i), kind="a" if i % 2 else "b"), tenant=t)
        for i, t in zip(range(12), [None, "one"] * 6)
    ]
    store.replace_documents({c.doc_id: "h" for c in rows}, rows, "p")
    assert isinstance(store, RankingStore)
    for access in (None, Access(), Access("one")):
        for flt in (None, parse_filter("kind = 'a'")):
            full = store.vector_search(unit(3), 5, flt, access)
            ranked = store.vector_ranking(unit(3), 5, flt, access)
            assert [(h.chunk.chunk_id, h.score) for h in full] == [(r.chunk_id, r.score) for r in ranked]
            full = store.keyword_search("solar panels", 5, flt, access)
            ranked = store.keyword_ranking("solar panels", 5, flt, access)
            assert [(h.chunk.chunk_id, h.score) for h in full] == [(r.chunk_id, r.score) for r in ranked]
            chunks = store.chunks_at(list(reversed(ranked)))
            assert [c.chunk_id for c in chunks] == [r.chunk_id for r in reversed(ranked)]
            expected = {h.chunk.chunk_id: h.chunk for h in full}
            for c in chunks:
                assert (c.text, c.tenant) == (expected[c.chunk_id].text, expected[c.chunk_id].tenant)
                assert np.array_equal(c.vector, expected[c.chunk_id].vector)
    assert {r.chunk_id for r in store.keyword_ranking("solar", 12, access=Access("one"))} == {
        c.chunk_id for c in rows if c.tenant == "one"
    }
    ranked = store.vector_ranking(unit(3), 3)
    assert store.chunks_at([replace(ranked[0], chunk_id="d99::0")]) is None  # another chunk's row
    store.delete_documents([ranked[1].chunk_id.split("::")[0]])
    assert store.chunks_at(ranked[1:2]) is None  # the row is gone
    assert store.chunks_at([]) == []
