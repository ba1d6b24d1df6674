from __future__ import annotations

import dataclasses
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


def _tenant_rows(n: int, dim: int = 8) -> list[Chunk]:
    from dataclasses import replace

    return [
        replace(chunk(f"d{i}", 0, f"solar report {i}", unit(i), kind="a" if i % 3 else "b"), tenant=t)
        for i, t in zip(range(n), [None, "one", "two"] * n)
    ]


def test_flat_search_from_memory_ranks_as_lancedb_under_every_view(tmp_path: Path) -> None:
    """The in-memory exact search (index/lance_reads.py) returns LanceDB's flat search: same ids in
    the same order, cosine within float32 rounding, with the caller's access and a filter applied
    before ranking (a tenant never sees another tenant's row, however similar)."""
    from groundwork.filters import parse_filter
    from groundwork.types import Access

    rows = _tenant_rows(40)
    memory = LanceStore(tmp_path / "kb", IndexSettings())
    memory.check_model("m", 8)
    memory.replace_documents({c.doc_id: "h" for c in rows}, rows, "p")
    lancedb = LanceStore(tmp_path / "kb", IndexSettings(flat_in_memory=False))
    for seed in range(5):
        for access in (None, Access(), Access("one"), Access("two")):
            for flt in (None, parse_filter("kind = 'a'")):
                got = memory.vector_search(unit(100 + seed), 10, flt, access)
                want = lancedb.vector_search(unit(100 + seed), 10, flt, access)
                assert [h.chunk.chunk_id for h in got] == [h.chunk.chunk_id for h in want]
                assert np.allclose([h.score for h in got], [h.score for h in want], atol=1e-5)
                if access is not None and access.tenant:
                    assert {h.chunk.tenant for h in got} <= {access.tenant}
    assert memory._flat.version is not None and lancedb._flat.version is None  # each took its own path


def test_kept_rows_read_from_the_memory_copy_are_the_stored_rows(tmp_path: Path) -> None:
    """Below the bound the rows a search keeps come from the in-memory copy of the version it ranked
    (loaded in the background after the exact search's vectors): every field and the vector as
    pylance reads them from the files; a bound of 0 holds no rows and reads the files; a write by
    another store is in the very next read."""
    rows = [chunk(f"d{i}", 0, f"solar report {i} panels", unit(i), kind="a" if i % 2 else "b", n=i) for i in range(12)]
    memory = LanceStore(tmp_path / "kb", IndexSettings())
    memory.check_model("m", 8)
    memory.replace_documents({c.doc_id: "h" for c in rows}, rows, "p")
    files = LanceStore(tmp_path / "kb", IndexSettings(memory_rows_max_mb=0))
    refs = memory.vector_ranking(unit(3), 12)
    assert [r.chunk_id for r in files.vector_ranking(unit(3), 12)] == [r.chunk_id for r in refs]
    ds = memory._dataset()
    assert memory._flat.take(ds, [refs[0].ref]) is None  # the search loaded vectors; the rows follow
    memory._flat._loader.join(30)
    assert memory._flat.take(ds, [refs[0].ref]) is not None  # the read below is the copy's
    assert files._flat.take(ds, [refs[0].ref]) is None and files._flat._loader is None  # a cap of 0
    got, want = memory.chunks_at(refs[::-1]), files.chunks_at(refs[::-1])
    assert [c.chunk_id for c in got] == [r.chunk_id for r in refs[::-1]]
    for a, b in zip(got, want):
        assert np.array_equal(a.vector, b.vector) and a.vector.dtype == np.float32
        assert dataclasses.replace(a, vector=None) == dataclasses.replace(b, vector=None)
    writer = LanceStore(tmp_path / "kb", IndexSettings())
    writer.replace_documents({"d3": "h2"}, [chunk("d3", 0, "rewritten", unit(3))], "p")
    assert memory.vector_search(unit(3), 1)[0].chunk.text == "rewritten"
    assert memory.chunks_at(refs[:1]) is None  # the old row id no longer names a row


def test_a_store_sees_its_own_writes_however_stale_reads_may_be(tmp_path: Path) -> None:
    """index.read_consistency_s lets reads lag other processes' writes, never the store's own: the
    version number and the in-memory search move with each write at once."""
    store = LanceStore(tmp_path / "kb", IndexSettings(read_consistency_s=3600))
    store.check_model("m", 8)
    rows = _tenant_rows(4)
    store.replace_documents({c.doc_id: "h" for c in rows}, rows, "p")
    store.record_version(4, 0, 0, [c.doc_id for c in rows])
    assert store.current_version() == 1 and store.vector_search(unit(1), 1)[0].chunk.doc_id == "d1"
    probe = unit(999)
    store.replace_documents({"new": "h"}, [chunk("new", 0, "the probe", probe)], "p")
    store.record_version(1, 0, 0, ["new"])
    assert store.current_version() == 2 and store.vector_search(probe, 1)[0].chunk.doc_id == "new"
    store.delete_documents(["new"])
    assert "new" not in {h.chunk.doc_id for h in store.vector_search(probe, 5)}


def test_a_filter_lance_cannot_evaluate_is_a_filter_error_without_the_internal_sql(tmp_path: Path) -> None:
    """The exact search's pre-filter is Lance's SQL on the copy's version: a comparison Lance cannot
    evaluate (text against an integer field) is the caller's FilterError, its message free of SQL."""
    from groundwork.errors import FilterError
    from groundwork.filters import parse_filter
    from groundwork.types import Access

    store = LanceStore(tmp_path / "kb", IndexSettings())
    store.check_model("m", 8)
    store.replace_documents({"a": "h"}, [chunk("a", 0, "alpha", unit(1), year=2021)], "p")
    assert [h.chunk.doc_id for h in store.vector_search(unit(1), 5, parse_filter("year = 2021"), Access())] == ["a"]
    assert store._flat.version is not None  # the exact search from memory answered
    with pytest.raises(FilterError) as err:
        store.vector_search(unit(1), 5, parse_filter("year = 'abc'"), Access())
    message = str(err.value)
    assert message.startswith("filter:") and "year" not in message.split(":", 1)[1].split(";")[0]
    assert "acl_" not in message and "`" not in message and "strpos" not in message


def test_the_row_copy_is_bounded_by_its_memory_not_its_compressed_size_on_disk(tmp_path: Path) -> None:
    """Lance compresses text: repetitive chunks take far less disk than memory. A copy whose rows
    would pass the bound on disk but not in memory keeps no rows, and the next estimate uses the
    measured ratio."""
    rows = [chunk(f"d{i}", 0, "solar " * 2000 + str(i), unit(i)) for i in range(40)]
    store = LanceStore(tmp_path / "kb", IndexSettings())
    store.check_model("m", 8)
    store.replace_documents({c.doc_id: "h" for c in rows}, rows, "p")
    from groundwork.index.lance_reads import _data_bytes

    ds = store._dataset()
    disk = _data_bytes(ds)
    store._flat.max_row_bytes = 2 * disk
    assert store._flat.max_row_bytes < 40 * 12_000  # the text alone is over the bound in memory
    refs = store.vector_ranking(unit(3), 5)
    assert store._flat.take(ds, [refs[0].ref]) is None  # starts the load with rows
    store._flat._loader.join(30)
    assert store._flat.version == ds.version and not store._flat.holds(ds)  # the vectors stay, no rows
    assert store._flat._ratio > 2 and store._flat._over_cap == ds.version
    assert [c.chunk_id for c in store.chunks_at(refs)] == [r.chunk_id for r in refs]  # from the files


def test_flat_search_sees_another_writers_changes_at_once(tmp_path: Path) -> None:
    """The in-memory copy belongs to one table version: a document written or deleted by another
    store (another process, say) is in, or out of, the very next search."""
    reader = LanceStore(tmp_path / "kb", IndexSettings())
    reader.check_model("m", 8)
    rows = _tenant_rows(10)
    reader.replace_documents({c.doc_id: "h" for c in rows}, rows, "p")
    probe = unit(999)
    assert "new" not in {h.chunk.doc_id for h in reader.vector_search(probe, 3)}
    writer = LanceStore(tmp_path / "kb", IndexSettings())
    writer.replace_documents({"new": "h"}, [chunk("new", 0, "the probe itself", probe)], "p")
    hits = reader.vector_search(probe, 3)
    assert hits[0].chunk.doc_id == "new" and hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert reader.vector_ranking(probe, 1)[0].chunk_id == "new::0"
    writer.delete_documents(["new"])
    assert "new" not in {h.chunk.doc_id for h in reader.vector_search(probe, 3)}
    assert "new::0" not in {r.chunk_id for r in reader.vector_ranking(probe, 3)}


def test_a_table_past_the_flat_bound_is_not_copied_into_memory(tmp_path: Path) -> None:
    """The exact search's copy is bounded by index.ann_min_rows rows: past it (the ANN index not built
    yet, or built by another process) the search is LanceDB's, and, with no row copy allowed
    (index.memory_rows_max_mb = 0), nothing is loaded."""
    store = LanceStore(tmp_path / "kb", IndexSettings(ann_min_rows=5, memory_rows_max_mb=0))
    store.check_model("m", 8)
    rows = _tenant_rows(6)
    store.replace_documents({c.doc_id: "h" for c in rows}, rows, "p")
    assert not store.has_ann_index()
    assert [h.chunk.doc_id for h in store.vector_search(unit(3), 1)] == ["d3"]
    assert store._flat.version is None


def test_above_the_ann_bound_kept_rows_come_from_a_copy_loaded_in_the_background(tmp_path: Path) -> None:
    """Past index.ann_min_rows a search never waits for the row copy: the first read comes from the
    files and starts a background load; once loaded, reads come from the copy, field for field the
    files' rows; a write makes the copy stale (files again) until its reload; data over the byte cap
    is never copied."""
    import time

    rows = [chunk(f"d{i}", 0, f"solar report {i} panels", unit(i), kind="a" if i % 2 else "b") for i in range(30)]
    store = LanceStore(tmp_path / "kb", IndexSettings(ann_min_rows=10))
    store.check_model("m", 8)
    store.replace_documents({c.doc_id: "h" for c in rows}, rows, "p")
    refs = store.keyword_ranking("solar panels", 8)
    files = LanceStore(tmp_path / "kb", IndexSettings(ann_min_rows=10, memory_rows_max_mb=0)).chunks_at(refs)

    def copied(ds) -> bool:
        deadline = time.monotonic() + 30
        while store._flat._loader is None or store._flat._loader.is_alive():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        return store._flat.take(ds, [r.ref for r in refs]) is not None

    ds = store._dataset()
    assert store._flat.take(ds, [r.ref for r in refs]) is None  # not loaded yet: the files answer
    assert copied(ds)
    got = store.chunks_at(refs)
    assert [dataclasses.replace(c, vector=None) for c in got] == [dataclasses.replace(c, vector=None) for c in files]
    assert all(np.array_equal(a.vector, b.vector) for a, b in zip(got, files))
    store.replace_documents({"d0": "h2"}, [chunk("d0", 0, "rewritten", unit(0))], "p")
    store._flat._next_load = 0.0  # the reload's rate limit is not what this test is about
    fresh = store._dataset()
    assert fresh.version != ds.version and store._flat.take(fresh, [refs[0].ref]) is None
    store._flat._loader.join(30)
    assert store._flat.version == fresh.version
    small = LanceStore(tmp_path / "kb", IndexSettings(ann_min_rows=10, memory_rows_max_mb=1))
    small._flat.max_row_bytes = 100  # under this table's data
    assert small.chunks_at(small.keyword_ranking("solar panels", 8)) is not None
    small._flat._loader.join(30)  # the loader measured the data and loaded nothing
    assert small._flat.version is None


@pytest.mark.parametrize("ann_min_rows", [1000, 10], ids=["exact-search-copy", "background-row-copy"])
def test_searches_during_writes_never_return_another_tenants_or_a_stale_row(tmp_path: Path, ann_min_rows: int) -> None:
    """The attack on the shared in-memory copy: one thread rewrites both tenants' documents (each
    chunk's text names its tenant and generation) while searching threads ask as tenant 'one'. Every
    hit is tenant one's, its text is the chunk's own at one generation, its vector the row's own;
    after the writes the search returns the last generation."""
    import threading
    import time

    from groundwork.types import Access

    def rows(gen: int) -> list[Chunk]:
        return [
            dataclasses.replace(chunk(f"{t}-{i}", 0, f"solar {t} {i} gen{gen}", unit(10 * i + gen)), tenant=t)
            for t in ("one", "two")
            for i in range(8)
        ]

    store = LanceStore(tmp_path / "kb", IndexSettings(ann_min_rows=ann_min_rows))
    store.check_model("m", 8)
    first = rows(0)
    store.replace_documents({c.doc_id: "h" for c in first}, first, "p")
    store._flat._next_load = 0.0
    done, failures = threading.Event(), []

    def search() -> None:
        try:
            check()
        except BaseException as e:  # pylance's Rust panics are BaseExceptions: a failure too
            failures.append(e)

    def check() -> None:
        while not done.is_set():
            rounds.append(1)
            kept = store.chunks_at(store.keyword_ranking("solar", 5, access=Access("one"))) or []
            for c in [h.chunk for h in store.vector_search(unit(3), 5, access=Access("one"))] + kept:
                text = c.text.split()
                if (
                    c.tenant != "one"
                    or text[1] != "one"
                    or f"{text[1]}-{text[2]}" != c.doc_id
                    or not np.allclose(c.vector, unit(10 * int(text[2]) + int(text[3][3:])))
                ):
                    failures.append(c)

    served, rounds = [], []
    take = store._flat.take

    def counted_take(*args, **kwargs):
        got = take(*args, **kwargs)
        served.append(got is not None)
        return got

    store._flat.take = counted_take
    readers = [threading.Thread(target=search) for _ in range(2)]
    for r in readers:
        r.start()
    writer = LanceStore(tmp_path / "kb", IndexSettings(ann_min_rows=ann_min_rows))
    for gen in range(1, 6):
        batch = rows(gen)
        writer.replace_documents({c.doc_id: f"h{gen}" for c in batch}, batch, "p")
        store._flat._next_load = 0.0
        seen, deadline = len(rounds), time.monotonic() + 30
        while len(rounds) < seen + 4 and time.monotonic() < deadline:  # searches between the writes too
            time.sleep(0.005)
    done.set()
    for r in readers:
        r.join(60)
        assert not r.is_alive()
    assert not failures, failures[:3]
    assert len(rounds) >= 2 and any(served)  # the readers searched, and the copy answered some reads
    last = store.vector_search(unit(3), 16, access=Access("one"))
    assert {h.chunk.text.split()[3] for h in last} == {"gen5"} and len(last) == 8


def test_a_failing_background_load_is_not_retried_on_every_search(tmp_path: Path, monkeypatch) -> None:
    """A background load that fails (a version cleaned up meanwhile, a Rust panic) leaves the files to
    serve, and the next load waits out the retry interval instead of starting with every search."""
    import groundwork.index.lance_reads as reads

    rows = [chunk(f"d{i}", 0, f"solar {i}", unit(i)) for i in range(30)]
    store = LanceStore(tmp_path / "kb", IndexSettings(ann_min_rows=10))
    store.check_model("m", 8)
    store.replace_documents({c.doc_id: "h" for c in rows}, rows, "p")
    calls = []

    def broken(ds, columns):
        calls.append(ds.version)
        raise OSError("data file gone")

    monkeypatch.setattr(reads, "_load", broken)
    refs = store.keyword_ranking("solar", 5)
    for _ in range(5):
        assert [c.chunk_id for c in store.chunks_at(refs)] == [r.chunk_id for r in refs]  # the files
        store._flat._loader.join(30)
    assert len(calls) == 1 and store._flat.version is None


def test_an_unfiltered_hnsw_search_through_pylance_is_lancedbs(tmp_path: Path) -> None:
    """Above the ANN bound a search with no pre-filter goes to the HNSW index through pylance: the
    same ids, order and scores as LanceDB's vector query on the same index; a filtered one stays on
    LanceDB's query."""
    from groundwork.filters import parse_filter

    rng = np.random.default_rng(3)
    vecs = rng.normal(size=(800, 8)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    store = LanceStore(tmp_path / "kb", IndexSettings(ann_min_rows=500, memory_rows_max_mb=0))
    store.check_model("m", 8)
    rows = [chunk(f"d{i}", 0, f"t{i}", vecs[i], kind="a" if i % 2 else "b") for i in range(800)]
    store.replace_documents({c.doc_id: "h" for c in rows}, rows, "p")
    store.optimize()
    assert store.has_ann_index()
    for qi in range(10):
        q = vecs[qi * 71]
        direct = store._direct_ranking(q, 10, None, None)
        query = store._vector_query(q, None, None).select(["chunk_id", "_distance"]).with_row_id(True).limit(10)
        table = store._read(query)
        assert [r.chunk_id for r in direct] == table.column("chunk_id").to_pylist()
        assert np.allclose([r.score for r in direct], [1 - d for d in table.column("_distance").to_pylist()])
        assert [h.chunk.chunk_id for h in store.vector_search(q, 10)] == [r.chunk_id for r in direct]
    assert store._direct_ranking(vecs[0], 10, parse_filter("kind = 'a'"), None) is None
    assert store._flat.version is None  # past the bound: nothing copied into memory


def test_a_process_that_exits_while_the_row_copy_loads_exits_cleanly(tmp_path: Path) -> None:
    """The CLI's one-shot search starts the background row copy and exits at once: the exit must
    not abort (a daemon loader inside pylance at interpreter shutdown ended the process with SIGABRT
    in ~4 of 10 runs of `groundwork search`)."""
    import subprocess
    import sys

    rows = [chunk(f"d{i}", 0, f"solar report {i} panels " * 20, unit(i)) for i in range(20_000)]
    store = LanceStore(tmp_path / "kb", IndexSettings(ann_min_rows=10))
    store.check_model("m", 8)
    store.replace_documents({c.doc_id: "h" for c in rows}, rows, "p")
    script = (
        "import sys\n"
        "from groundwork.config import IndexSettings\n"
        "from groundwork.index.lance import LanceStore\n"
        "s = LanceStore(sys.argv[1], IndexSettings(ann_min_rows=10))\n"
        "hits = s.chunks_at(s.keyword_ranking('solar panels', 5))\n"
        "assert s._flat._loader is not None and s._flat._loader.is_alive(), 'no background load to exit during'\n"
        "print(len(hits))\n"
    )
    for _ in range(3):
        done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "kb")], capture_output=True, text=True)
        assert (done.returncode, done.stdout.strip()) == (0, "5"), done.stderr[-2000:]
