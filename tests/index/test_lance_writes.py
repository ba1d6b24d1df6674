"""Small writes stay small on LanceDB: the write path, size-tiered compaction, version cleanup."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from groundwork.config import IndexSettings
from groundwork.errors import StoreError
from groundwork.index.lance import LanceStore
from groundwork.index.lance_storage import tier_to_merge
from groundwork.ingest.sources import bytes_item
from groundwork.types import Chunk

DIM = 384


def unit_vectors(n: int, seed: int, dim: int = DIM) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def chunks_of(doc: str, texts: list[str], seed: int, dim: int = DIM) -> list[Chunk]:
    vecs = unit_vectors(len(texts), seed, dim)
    return [
        Chunk(
            chunk_id=f"{doc}::{i}",
            doc_id=doc,
            source=doc,
            position=i,
            text=t,
            content_hash=f"{doc}-{t}",
            metadata={},
            vector=vecs[i],
        )
        for i, t in enumerate(texts)
    ]


def base_index(store: LanceStore, docs: int, chunks_per_doc: int = 5) -> None:
    """``docs`` documents of abstract-sized chunks, written in one batch and optimized: an indexed table."""
    words = ["cell", "protein", "gene", "tumour", "patient", "trial", "dose", "receptor", "pathway", "risk"]
    rng = np.random.default_rng(0)
    batch: list[Chunk] = []
    for d in range(docs):
        texts = [" ".join(rng.choice(words, 120)) for _ in range(chunks_per_doc)]
        batch += chunks_of(f"base/{d}", texts, seed=d, dim=store.meta["dimension"])
    store.replace_documents({c.doc_id: "h" for c in batch}, batch, "p")
    store.optimize()


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def note(i: int) -> bytes:
    return f"# Note {i}\n\nThe canteen serves soup number {i} on weekdays. Parking bay {i} is free.\n".encode()


def test_fifty_uploads_grow_the_folder_by_their_content(make_kb) -> None:
    """The operator's report at small scale: each upload used to rewrite the table's data file and
    full-text index (kept for 168 h), so 50 uploads to a 1,000-chunk index grew the folder by ~50
    copies of it (over 100 MB here). Now the growth is bounded by what the uploads wrote."""
    kb = make_kb()
    kb.store.check_model(kb.embedder.model_id, kb.embedder.dimension)
    base_index(kb.store, docs=200)
    assert kb.store.count_chunks() == 1000
    lancedb = kb.path / "lancedb"
    before = folder_bytes(lancedb)
    table_bytes = folder_bytes(lancedb / "chunks.lance" / "data")

    written = 0
    for i in range(50):
        report = kb.ingest([], items=[bytes_item(f"upload://t/n{i}.md", note(i))], sync=False)
        assert report.added == 1
        written += report.chunks_written
    growth = folder_bytes(lancedb) - before

    # The content: a chunk row holds its text twice (as shown and as searched) and a 384 x 4-byte vector.
    content = written * (2 * len(note(0)) + DIM * 4)
    # The bound: Lance's fixed cost of a commit, 48 KB per ingest (a new data file has ~1 KB of
    # metadata per column, 20 columns; manifests and transactions of the chunks and versions tables),
    # plus 4x the content (the rows, their delta index segments, size-tiered merges).
    assert growth < 50 * 48_000 + 4 * content, (growth, content)
    assert growth < table_bytes / 2  # the old code wrote a new copy of the table on every ingest
    assert [h.chunk.doc_id for h in kb.search("soup number 37", mode="bm25", top_k=1)] == ["upload://t/n37.md"]


def test_replacement_is_one_commit_of_the_batch_only(tmp_path: Path) -> None:
    store = LanceStore(tmp_path / "kb", IndexSettings())
    store.check_model("m", DIM)
    base_index(store, docs=200)
    data = tmp_path / "kb" / "lancedb" / "chunks.lance" / "data"
    files_before = {p.name: p.stat().st_size for p in data.iterdir()}
    version = store._chunks.version

    store.replace_documents({"base/7": "h2"}, chunks_of("base/7", ["only one chunk now"], seed=99), "p")

    assert store._chunks.version == version + 1
    new_files = {p.name: p.stat().st_size for p in data.iterdir() if p.name not in files_before}
    assert len(new_files) == 1 and sum(new_files.values()) < 16_000  # one small file: this batch's row
    assert [c.text for c in store.document_chunks("base/7")] == ["only one chunk now"]
    assert store.count_chunks() == 1000 - 5 + 1


def test_replacement_interrupted_before_its_commit_leaves_no_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash between writing the batch's files and committing them: the old chunks stay, whole."""
    import lance

    store = LanceStore(tmp_path / "kb", IndexSettings())
    store.check_model("m", 8)
    store.replace_documents(
        {"a": "h1", "b": "h1"}, chunks_of("a", ["a0", "a1", "a2"], 1, 8) + chunks_of("b", ["b0"], 2, 8), "p"
    )

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed before the commit")

    monkeypatch.setattr(lance.LanceDataset, "commit", staticmethod(crash))
    with pytest.raises(KeyboardInterrupt):
        store.replace_documents(
            {"a": "h2", "c": "h2"}, chunks_of("a", ["A0"], 3, 8) + chunks_of("c", ["c0"], 4, 8), "p"
        )
    monkeypatch.undo()

    reopened = LanceStore(tmp_path / "kb", IndexSettings())
    assert [c.text for c in reopened.document_chunks("a")] == ["a0", "a1", "a2"]
    assert reopened.document_chunks("c") == [] and reopened.count_chunks() == 4
    reopened.replace_documents({"a": "h2", "c": "h2"}, chunks_of("a", ["A0"], 3, 8) + chunks_of("c", ["c0"], 4, 8), "p")
    assert [c.text for c in reopened.document_chunks("a")] == ["A0"]
    assert sorted(reopened.chunk_ids()) == ["a::0", "b::0", "c::0"]


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([], 0),
        ([12_500, 3, 3, 3], 0),  # fewer than k runs in the newest tier
        ([12_500, 3, 3, 3, 3], 4),  # the newest k runs share tier 0: merged
        ([12_500, 40, 3, 3, 3, 3], 4),  # an older, larger run is left alone
        ([12_500, 16, 20, 24, 30, 3], 0),  # the newest run's tier (0) holds one run
        ([12_500, 16, 20, 24, 30], 4),  # tier 2 (16..63 rows) is full
        ([200_000, 200_000, 200_000, 200_000], 0),  # runs of max_rows are never rewritten
    ],
)
def test_size_tiers(rows: list[int], expected: int) -> None:
    assert tier_to_merge(rows, k=4, max_rows=131_072) == expected


def vectors_of(store: LanceStore, doc_id: str) -> np.ndarray:
    rows = sorted((r for r in store.export_rows() if r["doc_id"] == doc_id), key=lambda r: r["position"])
    return np.stack([r["vector"] for r in rows])


def reindexed(store: LanceStore, writes: int) -> np.ndarray:
    """Re-embed with another model, then ``writes`` one-document writes, each optimized."""
    before = vectors_of(store, "base/0")
    store.reembed("other-model", DIM, lambda texts: unit_vectors(len(texts), seed=len(texts) + 5))
    assert not np.allclose(vectors_of(store, "base/0"), before)
    for i in range(writes):
        store.replace_documents({f"w{i}": "h"}, chunks_of(f"w{i}", [f"write {i}"], seed=1000 + i), "p")
        store.record_version(1, 0, 0, [f"w{i}"])
        store.optimize()
    return before


def test_rollback_after_reindex_survives_small_writes_within_retention(tmp_path: Path) -> None:
    """Compaction and cleanup after the reindex keep the pre-reindex version for the retention window."""
    store = LanceStore(tmp_path / "kb", IndexSettings(compaction_fragments=2, cleanup_interval_minutes=0))
    store.check_model("m", DIM)
    base_index(store, docs=20)
    before = reindexed(store, writes=6)
    assert store.rollback()["model_id"] == "m"
    assert np.allclose(vectors_of(store, "base/0"), before)


def test_rollback_after_reindex_needs_retention(tmp_path: Path) -> None:
    """What a retention of 0 costs: the pre-reindex version is cleaned up, so rollback must refuse."""
    settings = IndexSettings(compaction_fragments=2, cleanup_interval_minutes=0, version_retention_hours=0)
    store = LanceStore(tmp_path / "kb", settings)
    store.check_model("m", DIM)
    base_index(store, docs=20)
    reindexed(store, writes=2)
    with pytest.raises(StoreError, match="no longer available"):
        store.rollback()


def test_cleanup_runs_at_most_once_per_interval(tmp_path: Path) -> None:
    store = LanceStore(tmp_path / "kb", IndexSettings(version_retention_hours=0, cleanup_interval_minutes=60))
    store.check_model("m", 8)
    for i in range(3):
        store.replace_documents({f"d{i}": "h"}, chunks_of(f"d{i}", [f"t{i}"], i, 8), "p")
    store.optimize()  # the first cleanup: every version but the latest goes
    assert len(store._chunks.list_versions()) == 1
    for i in range(3, 6):
        store.replace_documents({f"d{i}": "h"}, chunks_of(f"d{i}", [f"t{i}"], i, 8), "p")
    store.optimize()  # within the interval: versions stay until the next cleanup is due
    assert len(store._chunks.list_versions()) > 1


def test_an_index_from_before_the_doc_id_btree_gets_it_in_line_with_the_full_text_index(tmp_path: Path) -> None:
    """Indexes written by earlier versions have no ``doc_id`` B-tree; ``optimize`` adds it so that its
    segments match the full-text index's, and compaction keeps merging small writes afterwards."""
    from groundwork.index.lance_storage import index_segments as segments_of
    from groundwork.index.lance_storage import latest

    store = LanceStore(tmp_path / "kb", IndexSettings(compaction_fragments=2))
    store.check_model("m", 8)
    store.replace_documents({"a": "h"}, chunks_of("a", ["a0", "a1"], 1, 8), "p")
    store._chunks.drop_index("doc_id_idx")
    store.replace_documents({"b": "h"}, chunks_of("b", ["b0"], 2, 8), "p")
    store.optimize()
    for i in range(8):
        store.replace_documents({f"w{i}": "h"}, chunks_of(f"w{i}", [f"w{i}"], 10 + i, 8), "p")
        store.optimize()
    segments = segments_of(latest(store._chunks))
    assert sorted(segments) == ["doc_id_idx", "search_text_idx"]
    assert segments["doc_id_idx"] == segments["search_text_idx"]
    assert len(latest(store._chunks).get_fragments()) <= 4  # 8 one-row writes merged by tiers of 2
    assert store.count_chunks() == 11 and [c.text for c in store.document_chunks("b")] == ["b0"]


def test_one_run_of_many_batches_is_indexed_as_one_fragment(tmp_path: Path) -> None:
    """An ingest run writes a fragment per batch; they are compacted before being indexed as one segment,
    since a segment's fragments are never merged later and a search visits every fragment."""
    from groundwork.index.lance_storage import latest

    store = LanceStore(tmp_path / "kb", IndexSettings(cleanup_interval_minutes=0))
    store.check_model("m", DIM)
    base_index(store, docs=10)
    before = len(latest(store._chunks).get_fragments())
    words = ["canteen", "parking", "badge", "laptop", "holiday"]
    for b in range(12):  # one run of 12 mid-size batches (300 rows each), optimized once at its end
        batch = []
        for d in range(60):
            doc = f"run/{b}/{d}"
            batch += chunks_of(
                doc, [f"{words[(b + d) % 5]} batch{b} doc{d} part{i}" for i in range(5)], seed=100 * b + d
            )
        store.replace_documents({c.doc_id: "h" for c in batch}, batch, "p")
    assert len(latest(store._chunks).get_fragments()) == before + 12
    store.optimize()
    assert len(latest(store._chunks).get_fragments()) == before + 1
    assert store.count_chunks() == 50 + 12 * 300
    hits = store.keyword_search("parking batch7 doc4", top_k=3)  # the rows are searchable after the rewrite
    assert [h.chunk.doc_id for h in hits] == ["run/7/4"] * 3
