"""The Store contract, run against both stores: embedded LanceDB and a real PostgreSQL + pgvector."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from groundwork.config import IndexSettings
from groundwork.errors import FilterError, ModelMismatchError, StoreError
from groundwork.filters import parse_filter
from groundwork.index.store import ROW_COLUMNS, Store
from groundwork.types import Access, Chunk

DIM = 8


def chunk(
    doc: str, i: int, text: str, vec: np.ndarray, tenant: str | None = None, groups: tuple[str, ...] = (), **meta
) -> Chunk:
    return Chunk(
        chunk_id=f"{doc}::{i}",
        doc_id=doc,
        source=f"/src/{doc}",
        position=i,
        text=text,
        content_hash=f"h{doc}{i}",
        metadata=meta,
        vector=vec,
        tenant=tenant,
        allowed_groups=groups,
    )


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=DIM).astype(np.float32)
    return v / np.linalg.norm(v)


@pytest.fixture(params=["lance", "postgres"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path):
    """Factory: (settings) -> a store of the parametrised kind; the same call opens the same store."""
    if request.param == "lance":
        from groundwork.index.lance import LanceStore

        yield lambda settings=None: LanceStore(tmp_path / "kb", settings or IndexSettings())
        return
    from groundwork.index.postgres import PgStore

    dsn, schema = request.getfixturevalue("pg_dsn"), request.getfixturevalue("pg_schema")
    opened: list[PgStore] = []

    def make(settings=None):
        opened.append(PgStore.connect(dsn, DIM, settings or IndexSettings(), schema=schema, pool_size=2))
        return opened[-1]

    yield make
    for s in opened:
        s.close()


@pytest.fixture
def store(open_store) -> Store:
    s = open_store()
    s.check_model("m", DIM)
    return s


def test_both_implement_the_protocol(store: Store) -> None:
    assert isinstance(store, Store)


def test_prefilter_returns_top_k_even_when_matches_are_rare(store: Store) -> None:
    # 200 "news" chunks and 12 "sports" chunks; the query vector is nearest to the news chunks.
    q = unit(0)
    rows = [
        chunk(f"n{i}", 0, f"news item {i} market report", q + 0.01 * unit(i + 1), category="news") for i in range(200)
    ]
    rows += [chunk(f"s{i}", 0, f"sports item {i} match report", unit(1000 + i), category="sports") for i in range(12)]
    store.replace_documents({c.doc_id: "h" for c in rows}, rows, "p")
    flt = parse_filter("category = 'sports'")
    dense = store.vector_search(q, 10, flt)
    assert len(dense) == 10 and all(h.chunk.metadata["category"] == "sports" for h in dense)
    bm25 = store.keyword_search("report", 10, flt)
    assert len(bm25) == 10 and all(h.chunk.metadata["category"] == "sports" for h in bm25)


def test_prefilter_holds_with_an_ann_index(open_store) -> None:
    # Above ann_min_rows the store searches an HNSW index; a rare filter value must still give top_k.
    s = open_store(IndexSettings(ann_min_rows=500))
    s.check_model("m", DIM)
    q = unit(0)
    rows = [chunk(f"n{i}", 0, f"news {i}", q + 0.01 * unit(i + 1), category="news") for i in range(600)]
    rows += [chunk(f"s{i}", 0, f"sports {i}", unit(1000 + i), category="sports") for i in range(12)]
    s.replace_documents({c.doc_id: "h" for c in rows}, rows, "p")
    s.optimize()
    assert s.has_ann_index()
    dense = s.vector_search(q, 10, parse_filter("category = 'sports'"))
    assert len(dense) == 10 and {h.chunk.metadata["category"] for h in dense} == {"sports"}
    exact = sorted(range(12), key=lambda i: -float(unit(1000 + i) @ q))[:10]
    # The index may be quantised (LanceDB's HNSW_SQ), so the order of near ties can differ from exact.
    assert len({h.chunk.doc_id for h in dense} & {f"s{i}" for i in exact}) >= 9


def test_scores_and_order(store: Store) -> None:
    rows = [chunk(f"d{i}", 0, f"text {i}", unit(i)) for i in range(20)]
    store.replace_documents({c.doc_id: "h" for c in rows}, rows, "p")
    hits = store.vector_search(unit(3), 5)
    assert hits[0].chunk.doc_id == "d3" and hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert [h.rank for h in hits] == [1, 2, 3, 4, 5]
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))
    assert np.allclose(np.asarray(hits[0].chunk.vector, np.float32), unit(3), atol=1e-6)


def test_keyword_search_matches_any_term_and_stems(store: Store) -> None:
    rows = [
        chunk("a", 0, "The pump pressure is checked weekly", unit(1)),
        chunk("b", 0, "Valves are replaced yearly", unit(2)),
        chunk("c", 0, "Nothing relevant here at all", unit(3)),
    ]
    store.replace_documents({c.doc_id: "h" for c in rows}, rows, "p")
    assert {
        h.chunk.doc_id for h in store.keyword_search("how often is the valve replaced or pressures checked", 10)
    } == {"a", "b"}
    assert store.keyword_search("the of and", 10) == []  # stop words only
    assert store.keyword_search("   ", 10) == []


def test_context_lines_are_searched_and_come_back_with_the_chunk(store: Store) -> None:
    # The document's context lines (record metadata) are indexed text, not shown text.
    rows = [chunk("a", 0, "Quarterly results beat the forecast", unit(1)), chunk("b", 0, "Results were flat", unit(2))]
    rows[0].context = "source: Mashable\npublished_at: November 27, 2023"
    store.replace_documents({c.doc_id: "h" for c in rows}, rows, "p")
    hits = store.keyword_search("what did Mashable publish", 10)
    assert [h.chunk.doc_id for h in hits] == ["a"]
    assert hits[0].chunk.context == rows[0].context and hits[0].chunk.text == rows[0].text
    assert (
        hits[0].chunk.search_text
        == "source: Mashable\npublished_at: November 27, 2023\nQuarterly results beat the forecast"
    )
    assert store.vector_search(unit(2), 1)[0].chunk.context == ""


def test_metadata_types_new_fields_and_comparisons(store: Store) -> None:
    a = [chunk("a", 0, "alpha", unit(1), year=2021, date="2023-09-30", score=0.5)]
    store.replace_documents({"a": "h"}, a, "p")
    b = [chunk("b", 0, "beta", unit(2), year=2023, date="2023-10-02", lang="en")]  # adds a field
    store.replace_documents({"b": "h"}, b, "p")
    assert {"year", "date", "score", "lang", "doc_id", "page"} <= store.filter_fields()
    ids = lambda f: {h.chunk.doc_id for h in store.vector_search(unit(3), 10, parse_filter(f))}  # noqa: E731
    assert ids("year >= 2022") == {"b"}
    assert ids("year = 2021") == {"a"}
    assert ids("date >= '2023-10-01'") == {"b"}
    assert ids("lang IS NULL") == {"a"}
    assert ids("lang IS NOT NULL") == {"b"}
    assert ids("year IN (2021, 2023) AND NOT doc_id = 'a'") == {"b"}
    assert ids("doc_id IN ('a', 'x') OR score > 0.4") == {"a"}
    assert ids("lang != 'en'") == set()
    with pytest.raises(FilterError, match="unknown field 'colour'"):
        store.vector_search(unit(3), 5, parse_filter("colour = 'red'"))


def test_replace_is_per_document_and_delete(store: Store) -> None:
    store.replace_documents(
        {"a": "1", "b": "1"}, [chunk("a", i, f"a{i}", unit(i)) for i in range(3)] + [chunk("b", 0, "b0", unit(9))], "p"
    )
    store.replace_documents({"a": "2"}, [chunk("a", 0, "a-new", unit(5))], "p")
    docs = {d.doc_id: d for d in store.list_documents()}
    assert (docs["a"].chunks, docs["a"].content_hash, docs["b"].chunks) == (1, "2", 1)
    assert [c.text for c in store.document_chunks("a")] == ["a-new"]
    assert store.delete_documents(["b"]) == 1
    assert [d.doc_id for d in store.list_documents()] == ["a"]
    assert store.count_chunks() == 1 and store.document_chunks("b") == []


def test_access_control_is_inside_every_read(store: Store) -> None:
    rows = [
        chunk("pub", 0, "shared handbook text", unit(1)),
        chunk("t1", 0, "tenant one handbook text", unit(2), tenant="one"),
        chunk("t1hr", 0, "tenant one hr handbook text", unit(3), tenant="one", groups=("hr",)),
        chunk("t2", 0, "tenant two handbook text", unit(4), tenant="two"),
    ]
    store.replace_documents({c.doc_id: "h" for c in rows}, rows, "p")
    cases = {
        Access(): {"pub"},
        Access("one"): {"t1"},
        Access("one", ("hr",)): {"t1", "t1hr"},
        Access("two", ("hr",)): {"t2"},
        Access.all(): {"pub", "t1", "t1hr", "t2"},
    }
    for access, expected in cases.items():
        assert {h.chunk.doc_id for h in store.vector_search(unit(3), 10, access=access)} == expected, access
        assert {h.chunk.doc_id for h in store.keyword_search("handbook", 10, access=access)} == expected, access
        assert {d.doc_id for d in store.list_documents(access)} == expected, access
        assert bool(store.document_chunks("t1hr", access)) == ("t1hr" in expected), access
    docs = {d.doc_id: d for d in store.list_documents()}
    assert (docs["t1hr"].tenant, docs["t1hr"].allowed_groups) == ("one", ["hr"])
    with pytest.raises(FilterError, match="invalid tenant"):
        store.vector_search(unit(1), 5, access=Access("x' OR '1'='1"))


def test_model_mismatch_is_a_clear_error(open_store) -> None:
    open_store().check_model("model-a", DIM)
    with pytest.raises(ModelMismatchError, match="model-a.*model-b"):
        open_store().check_model("model-b", DIM)


def test_versions_numbered_without_gaps(store: Store) -> None:
    assert store.current_version() is None and store.list_versions() == []
    for i in range(3):
        store.replace_documents({f"d{i}": "h"}, [chunk(f"d{i}", 0, f"text {i}", unit(i))], "p")
        store.record_version(1, 0, 0, [f"d{i}"])
    versions = store.list_versions()
    assert [v.version for v in versions] == [1, 2, 3] and store.current_version() == 3
    assert (versions[-1].documents, versions[-1].chunks, versions[-1].changed_doc_ids) == (3, 3, ["d2"])


def test_reembed_and_rollback(store: Store) -> None:
    rows = [chunk(f"d{i}", 0, f"text {i}", unit(i)) for i in range(5)]
    store.replace_documents({c.doc_id: "h" for c in rows}, rows, "p")
    flipped = lambda texts: np.stack([-unit(int(t.split()[-1])) for t in texts])  # noqa: E731
    assert store.reembed("m2", DIM, flipped) == 5
    assert store.vector_search(-unit(2), 1)[0].chunk.doc_id == "d2"
    with pytest.raises(ModelMismatchError):
        store.check_model("m", DIM)
    assert store.rollback()["model_id"] == "m"
    store.check_model("m", DIM)
    assert store.vector_search(unit(2), 1)[0].score == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(StoreError, match="no earlier"):
        store.rollback()


def test_ann_index_built_above_threshold_keeps_recall(open_store) -> None:
    rng = np.random.default_rng(7)
    vecs = rng.normal(size=(3000, DIM)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    s = open_store(IndexSettings(ann_min_rows=2000))
    s.check_model("m", DIM)
    rows = [chunk(f"d{i}", 0, f"t{i}", vecs[i]) for i in range(3000)]
    s.replace_documents({c.doc_id: "h" for c in rows}, rows, "p")
    assert not s.has_ann_index()
    s.optimize()
    assert s.has_ann_index()
    recalls = []
    for qi in range(20):
        q = vecs[qi * 37] + 0.1 * rng.normal(size=DIM).astype(np.float32)
        q /= np.linalg.norm(q)
        exact = set(np.argsort(-(vecs @ q))[:10])
        got = {int(h.chunk.doc_id[1:]) for h in s.vector_search(q, 10)}
        recalls.append(len(exact & got) / 10)
    assert np.mean(recalls) >= 0.95


def test_rankings_are_the_searches_ids_and_kept_rows_are_read_by_ref(store: Store) -> None:
    """vector_ranking / keyword_ranking rank as vector_search / keyword_search (same pre-filters,
    access included) without reading rows; chunks_at reads exactly the rows named, in order, and
    refuses a ref whose row holds another chunk or is gone."""
    from dataclasses import replace

    from groundwork.index.store import RankingStore

    rows = [
        chunk(f"d{i}", 0, f"solar report {i} panels", unit(i), tenant=t, kind="a" if i % 2 else "b")
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
    again = replace(rows[int(ranked[2].chunk_id[1:].split("::")[0])], text="solar report rewritten")
    store.replace_documents({again.doc_id: "h2"}, [again], "p")
    assert store.chunks_at(ranked[2:3]) is None  # written again since the ranking: not the row ranked
    assert store.chunks_at([]) == []


def test_keyword_ranking_is_bm25(store: Store) -> None:
    # "pump" is in every chunk, "impeller" in one: IDF makes the rare term decide; a longer chunk with
    # the same term frequency ranks below a shorter one (length normalisation, b = 0.75).
    rows = [chunk(f"p{i}", 0, f"pump pump pump maintenance log entry {i}", unit(i)) for i in range(30)]
    rows += [
        chunk("imp", 0, "pump impeller", unit(99)),
        chunk("imp-long", 0, "pump impeller " + " ".join(f"filler{i}" for i in range(40)), unit(98)),
    ]
    store.replace_documents({c.doc_id: "h" for c in rows}, rows, "p")
    hits = store.keyword_search("pump impeller", 5)
    assert [h.chunk.doc_id for h in hits[:2]] == ["imp", "imp-long"]
    store.delete_documents([f"p{i}" for i in range(30)])
    after = store.keyword_search("pump", 5)
    assert {h.chunk.doc_id for h in after} == {"imp", "imp-long"}


def test_a_read_past_its_time_budget_is_cancelled_and_reported(open_store, request) -> None:
    from groundwork.errors import QueryTimeoutError

    s = open_store(IndexSettings(query_timeout_s=1e-6))
    s.check_model("m", DIM)
    s.replace_documents({"d": "h"}, [chunk("d", i, f"text number {i}", unit(i)) for i in range(50)], "p")
    with pytest.raises(QueryTimeoutError, match="time budget"):
        if "lance" in request.node.name:
            # LanceDB checks the budget inside the query (the in-memory flat vector search has no
            # query to cancel: its work is bounded by index.ann_min_rows rows)
            s.keyword_search("text number", 5)
        else:
            s._run_search("SELECT pg_sleep(1)", [])  # a statement the server cancels after 1 ms


# -- one writer at a time: the writer lock (Store.writing) -------------------------------------------
def test_a_second_writer_waits_says_so_once_and_times_out(open_store) -> None:
    first = open_store()
    first.check_model("m", DIM)
    second = open_store(IndexSettings(writer_timeout_s=0.5))  # another process's store, say
    told: list[str] = []
    with (
        first.writing("ingest"),
        pytest.raises(StoreError, match=r"another writer \(ingest\) still holds the writer lock"),
        second.writing("delete", on_wait=told.append),
    ):
        pytest.fail("two writers inside the lock at once")
    assert len(told) == 1 and told[0].startswith("waiting for another writer (ingest) to finish...")
    with second.writing("delete", on_wait=told.append):  # released: no wait, no message
        pass
    assert len(told) == 1


def test_a_waiting_writer_proceeds_when_the_first_finishes(open_store) -> None:
    first, second = open_store(), open_store()
    first.check_model("m", DIM)
    announced, events = threading.Event(), []

    def write_second() -> None:
        with second.writing("ingest", on_wait=lambda _: announced.set()):
            events.append("second in")
            second.replace_documents({"b": "h"}, [chunk("b", 0, "second writer", unit(2))], "p")
            second.record_version(1, 0, 0, ["b"])

    with first.writing("ingest"):
        first.replace_documents({"a": "h"}, [chunk("a", 0, "first writer", unit(1))], "p")
        waiter = threading.Thread(target=write_second)
        waiter.start()
        assert announced.wait(60), "the second writer never said it waits"
        events.append("first out")  # the second is still outside: it waits for this block to end
        first.record_version(1, 0, 0, ["a"])
    waiter.join(60)
    assert events == ["first out", "second in"]
    reader = open_store()
    assert [d.doc_id for d in reader.list_documents()] == ["a", "b"]
    assert [(v.version, v.documents) for v in reader.list_versions()] == [(1, 1), (2, 2)]


def test_writing_is_reentrant_within_a_thread(open_store) -> None:
    s = open_store(IndexSettings(writer_timeout_s=0.5))
    s.check_model("m", DIM)
    with s.writing("ingest"), s.writing("delete"):  # nested: no wait for itself
        s.replace_documents({"a": "h"}, [chunk("a", 0, "text", unit(1))], "p")
    with open_store(IndexSettings(writer_timeout_s=0.5)).writing("ingest"):
        pass  # released once the outer block ended


def test_writing_sees_what_another_store_wrote_since_it_was_opened(open_store) -> None:
    stale = open_store()  # opened before the other writer created the tables
    other = open_store()
    other.check_model("m", DIM)
    with other.writing("ingest"):
        other.replace_documents({"a": "h"}, [chunk("a", 0, "text", unit(1))], "p")
        other.record_version(1, 0, 0, ["a"])
    with stale.writing("ingest"):
        stale.check_model("m", DIM)
        assert [d.doc_id for d in stale.list_documents()] == ["a"]
        stale.replace_documents({"b": "h"}, [chunk("b", 0, "more", unit(2))], "p")
        assert stale.record_version(1, 0, 0, ["b"]).version == 2


# -- what `groundwork check` reads: stored rows, exact deletes, statistics -----------------------------
def test_stored_rows_drop_rows_and_statistics(store: Store) -> None:
    rows = [chunk("b", i, f"pump valve {i}", unit(i)) for i in range(3)] + [chunk("a", 0, "pump", unit(9))]
    store.replace_documents({"a": "ha", "b": "hb"}, rows, "p")
    stored = store.stored_rows()
    assert stored.column_names == list(ROW_COLUMNS)
    assert sorted((r["chunk_id"], r["doc_id"], r["doc_hash"], r["pipeline_hash"]) for r in stored.to_pylist()) == [
        ("a::0", "a", "ha", "p"),
        *((f"b::{i}", "b", "hb", "p") for i in range(3)),
    ]
    assert all(stored.column("ingested_at").to_pylist())
    assert store.recount_statistics() == []
    victim = next(r for r in stored.to_pylist() if r["chunk_id"] == "b::1")
    assert store.drop_rows([victim["ref"]]) == 1
    assert [c.chunk_id for c in store.document_chunks("b")] == ["b::0", "b::2"]
    assert store.recount_statistics() == []  # statistics stay exact through a drop
    assert {h.chunk.chunk_id for h in store.keyword_search("valve", 10)} == {"b::0", "b::2"}
