from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from groundwork.config import EmbedderSettings, IndexSettings
from groundwork.errors import FilterError, ModelMismatchError
from groundwork.filters import parse_filter
from groundwork.index.lance import LanceStore
from groundwork.types import Chunk


def chunk(doc: str, i: int, text: str, vec: np.ndarray, **meta) -> Chunk:
    return Chunk(chunk_id=f"{doc}::{i}", doc_id=doc, source=f"/src/{doc}", position=i, text=text,
                 content_hash=f"h{doc}{i}", metadata=meta, vector=vec)  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> LanceStore:
    s = LanceStore(tmp_path / "kb", IndexSettings())
    s.check_model("m", 8)
    return s


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=8).astype(np.float32)
    return v / np.linalg.norm(v)


def test_prefilter_returns_top_k_even_when_matches_are_rare(store: LanceStore) -> None:
    # 200 "news" chunks and 12 "sports" chunks; the query vector is nearest to the news chunks.
    q = unit(0)
    rows = [chunk(f"n{i}", 0, f"news item {i} market report", q + 0.01 * unit(i + 1), category="news") for i in range(200)]
    rows += [chunk(f"s{i}", 0, f"sports item {i} match report", unit(1000 + i), category="sports") for i in range(12)]
    store.replace_documents({c.doc_id: "h" for c in rows}, rows, "p")
    flt = parse_filter("category = 'sports'")
    dense = store.vector_search(q, 10, flt)
    assert len(dense) == 10 and all(h.chunk.metadata["category"] == "sports" for h in dense)
    bm25 = store.keyword_search("report", 10, flt)
    assert len(bm25) == 10 and all(h.chunk.metadata["category"] == "sports" for h in bm25)


def test_metadata_types_new_fields_and_comparisons(store: LanceStore) -> None:
    a = [chunk("a", 0, "alpha", unit(1), year=2021, date="2023-09-30", score=0.5)]
    store.replace_documents({"a": "h"}, a, "p")
    b = [chunk("b", 0, "beta", unit(2), year=2023, date="2023-10-02", lang="en")]  # adds a field
    store.replace_documents({"b": "h"}, b, "p")
    assert {"year", "date", "score", "lang", "doc_id", "page"} <= store.filter_fields()
    ids = lambda f: {h.chunk.doc_id for h in store.vector_search(unit(3), 10, parse_filter(f))}  # noqa: E731
    assert ids("year >= 2022") == {"b"}
    assert ids("date >= '2023-10-01'") == {"b"}
    assert ids("lang IS NULL") == {"a"}
    assert ids("year IN (2021, 2023) AND NOT doc_id = 'a'") == {"b"}
    with pytest.raises(FilterError, match="unknown field 'colour'"):
        store.vector_search(unit(3), 5, parse_filter("colour = 'red'"))


def test_replace_is_per_document_and_delete(store: LanceStore) -> None:
    store.replace_documents({"a": "1", "b": "1"}, [chunk("a", i, f"a{i}", unit(i)) for i in range(3)] + [chunk("b", 0, "b0", unit(9))], "p")
    store.replace_documents({"a": "2"}, [chunk("a", 0, "a-new", unit(5))], "p")
    docs = {d.doc_id: d for d in store.list_documents()}
    assert (docs["a"].chunks, docs["a"].content_hash, docs["b"].chunks) == (1, "2", 1)
    assert store.delete_documents(["b"]) == 1
    assert [d.doc_id for d in store.list_documents()] == ["a"]


def test_model_mismatch_is_a_clear_error(tmp_path: Path) -> None:
    s = LanceStore(tmp_path / "kb")
    s.check_model("model-a", 384)
    with pytest.raises(ModelMismatchError, match="model-a.*model-b"):
        LanceStore(tmp_path / "kb").check_model("model-b", 384)


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


def test_ann_index_built_above_threshold_keeps_recall(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    vecs = rng.normal(size=(3000, 8)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    s = LanceStore(tmp_path / "kb", IndexSettings(ann_min_rows=2000))
    s.check_model("m", 8)
    rows = [chunk(f"d{i}", 0, f"t{i}", vecs[i]) for i in range(3000)]
    s.replace_documents({c.doc_id: "h" for c in rows}, rows, "p")
    s.optimize()
    assert s.has_ann_index()
    recalls = []
    for qi in range(20):
        q = vecs[qi * 37] + 0.1 * rng.normal(size=8).astype(np.float32)
        q /= np.linalg.norm(q)
        exact = set(np.argsort(-(vecs @ q))[:10])
        got = {int(h.chunk.doc_id[1:]) for h in s.vector_search(q, 10)}
        recalls.append(len(exact & got) / 10)
    assert np.mean(recalls) >= 0.95


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
