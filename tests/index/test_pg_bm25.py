"""PostgreSQL BM25 with MaxScore early termination against the full-scan query it replaced.

One store of a few hundred synthetic chunks (Zipf-distributed words, so a few terms are in most chunks
and many are rare; skewed term frequencies; tenants, groups and metadata), shared by the module.
"""

from __future__ import annotations

import dataclasses
import uuid

import numpy as np
import pytest

from groundwork.config import IndexSettings
from groundwork.filters import parse_filter
from groundwork.index import pg_bm25, pg_packed
from groundwork.index.rows import chunk_from_row
from groundwork.types import Access, Chunk

DIM = 8
# Words with punctuation the parser splits or keeps (hyphens, apostrophes, e-mail, URL, version, '\').
ODD = ["x-ray", "o'brien", "e-mail", "c++", "foo@bar.com", "http://ex.org/a", "1.5", "back\\slash", "don't"]
SYLL = ["ka", "lo", "mi", "ren", "tus", "vel", "dor", "pha", "qui", "zen", "bar", "nox"]


def _vocab(rng: np.random.Generator, n: int = 160) -> list[str]:
    words = {"".join(rng.choice(SYLL, size=rng.integers(2, 4))) for _ in range(n * 2)}
    return sorted(words)[:n] + ODD


@pytest.fixture(scope="module")
def corpus(pg_dsn: str):
    """(store, vocabulary): 400 chunks over 3 tenants (one None), groups on some, metadata kind/year."""
    import psycopg

    from groundwork.index.postgres import PgStore

    rng = np.random.default_rng(19)
    vocab = _vocab(rng)
    zipf = 1.0 / np.arange(1, len(vocab) + 1) ** 1.1
    zipf /= zipf.sum()
    chunks = []
    for i in range(400):
        words = list(rng.choice(vocab, size=int(rng.integers(3, 90)), p=zipf))
        if i % 7 == 0:  # a skewed term frequency: one word many times
            words += [words[0]] * int(rng.integers(5, 40))
        tenant = [None, "acme", "globex"][i % 3]
        groups = ("hr",) if i % 5 == 0 else ("eng", "ops") if i % 11 == 0 else ()
        vec = rng.normal(size=DIM).astype(np.float32)
        chunks.append(
            Chunk(
                chunk_id=f"d{i // 2}::{i % 2}",
                doc_id=f"d{i // 2}",
                source=f"/src/d{i // 2}",
                position=i % 2,
                text=" ".join(str(w) for w in words) + (" and the of" if i % 4 == 0 else ""),
                content_hash=f"h{i}",
                metadata={"kind": ["note", "spec", "log"][i % 3], "year": 2000 + i % 25},
                vector=vec / np.linalg.norm(vec),
                tenant=tenant,
                allowed_groups=groups,
            )
        )
    schema = f"t_{uuid.uuid4().hex[:12]}"
    store = PgStore.connect(pg_dsn, DIM, IndexSettings(), schema=schema, pool_size=2)
    store.check_model("m", DIM)
    store.replace_documents({c.doc_id: "h" for c in chunks}, chunks, "p")
    yield store, vocab
    store.close()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def _same(new, old) -> None:
    """Same ranking: scores within 1e-9 relative at every rank, and the same chunks at every rank but
    among equal scores (equal within 1e-9: the full scan sums a chunk's terms in whatever order its
    plan gives, so copies of one text can differ in the last bit, which decides their order). At the
    last score the tie may be cut at different chunks."""
    assert len(new) == len(old)
    for a, b in zip(new, old):
        assert a.score == pytest.approx(b.score, rel=1e-9)
    last = round(old[-1].score, 9) if old else None
    groups = [{(round(h.score, 9), h.chunk.chunk_id) for h in hits if round(h.score, 9) != last} for hits in (new, old)]
    assert groups[0] == groups[1]


ACCESS = [
    None,
    Access.all(),
    Access(tenant="acme"),
    Access(tenant="acme", groups=("hr",)),
    Access(tenant=None, groups=("eng",)),
    Access(tenant="globex", groups=("ops", "hr")),
]
FILTERS = [None, "kind = 'spec'", "year >= 2020", "kind IN ('note', 'log') AND year < 2010", "year >= 2001"]


def _queries(vocab: list[str], count: int, seed: int):
    """(query, top_k, filter, access): the commonest words (in most chunks), rare ones, odd tokens
    and stop words, under every access and filter."""
    rng = np.random.default_rng(seed)
    for n in range(count):
        words = list(rng.choice(vocab[:12], size=int(rng.integers(0, 4))))
        words += list(rng.choice(vocab, size=int(rng.integers(1, 6))))
        query = " ".join(str(w) for w in words) + (" the what is" if n % 3 == 0 else "")
        where = parse_filter(FILTERS[n % len(FILTERS)]) if FILTERS[n % len(FILTERS)] else None
        yield query, [1, 5, 10, 50][n % 4], where, ACCESS[n % len(ACCESS)]


def test_maxscore_ranking_equals_the_full_scan(corpus) -> None:
    store, vocab = corpus
    for query, top_k, where, access in _queries(vocab, 160, 7):
        new = store._keyword(query, top_k, where, access, pg_bm25.top_k)
        old = store._keyword(query, top_k, where, access, pg_bm25.full_scan)
        _same(new, old)


def _copy(source, dsn: str, schema: str, pool_size: int):
    """(a new store in ``schema`` holding ``source``'s rows, those rows)."""
    from groundwork.index.postgres import PgStore

    store = PgStore.connect(dsn, DIM, IndexSettings(query_timeout_s=30), schema=schema, pool_size=pool_size)
    store.check_model("m", DIM)
    rows = list(source.export_rows())
    store.import_rows(rows)
    return store, rows


def _traced(trace: list):
    def ranker(*args):
        return pg_packed.top_k(*args, trace=trace)

    return ranker


def test_packed_lists_rank_as_the_full_scan_with_dead_and_new_chunks(corpus, pg_dsn: str, pg_schema: str) -> None:
    # A copy of the corpus, packed, then written to: replaced documents leave dead row numbers in
    # the packed lists and new ones in the delta; deleted ones leave dead row numbers only.

    source, vocab = corpus
    store, rows = _copy(source, pg_dsn, pg_schema, pool_size=2)
    for stage in ("delta only", "packed", "packed and written"):
        if stage == "packed":
            assert store.pack_postings() >= len(rows)
        if stage == "packed and written":
            rng = np.random.default_rng(3)
            chunks = [chunk_from_row(r, r["vector"]) for r in rows[:120]]
            changed = [dataclasses.replace(c, text=" ".join(rng.choice(vocab, size=20))) for c in chunks[:60]]
            store.replace_documents({c.doc_id: "h2" for c in changed}, changed, "p")
            store.delete_documents(sorted({c.doc_id for c in chunks[60:]}))
        trace: list = []
        for query, top_k, where, access in _queries(vocab, 120, 11):
            new = store._keyword(query, top_k, where, access, _traced(trace))
            _same(new, store._keyword(query, top_k, where, access, pg_bm25.full_scan))
        paths = {t[0] for t in trace}
        assert "packed" in paths, (stage, paths)  # (selective filters go to MaxScore's filter-first scan)
        if stage == "packed and written":
            assert max(t[2] for t in trace if t[0] == "packed") > 1  # dead candidates made it ask again
    assert store.recount_statistics() == []
    store.close()


def test_many_writes_or_postings_fall_back_to_maxscore_and_optimize_packs(
    corpus, pg_dsn: str, pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:

    source, vocab = corpus
    store, _ = _copy(source, pg_dsn, pg_schema, pool_size=2)
    monkeypatch.setattr(pg_packed, "DELTA_FLOOR", 10)  # 400 chunks written, none packed: 400 > max(10, 100)
    query = f"{vocab[0]} {vocab[1]} {vocab[-12]}"
    trace: list = []
    _same(store._keyword(query, 5, None, None, _traced(trace)), store._keyword(query, 5, None, None, pg_bm25.full_scan))
    assert trace and all(t[0] != "packed" for t in trace)  # MaxScore's rounds
    monkeypatch.setattr(pg_packed, "PACK_FLOOR", 10)
    store.optimize()  # 400 written since the (missing) pack > max(10, 40): packs
    trace.clear()
    _same(store._keyword(query, 5, None, None, _traced(trace)), store._keyword(query, 5, None, None, pg_bm25.full_scan))
    assert [t[0] for t in trace] == ["packed"]
    # A question whose lists hold more postings than the bound never has them read: MaxScore answers.
    monkeypatch.setattr(pg_packed, "POSTINGS_MAX", 50)
    trace.clear()
    _same(store._keyword(query, 5, None, None, _traced(trace)), store._keyword(query, 5, None, None, pg_bm25.full_scan))
    assert trace and all(t[0] != "packed" for t in trace)
    monkeypatch.setattr(pg_packed, "POSTINGS_MAX", 4_000_000)
    # A filter the planner guesses keeps a third (a jsonb comparison) but that keeps nothing: the
    # candidates would grow to every chunk; past the bound MaxScore answers.
    monkeypatch.setattr(pg_packed, "CANDIDATES_MAX", 100)
    trace.clear()
    nothing = parse_filter("year >= 3000")
    _same(
        store._keyword(query, 5, nothing, None, _traced(trace)),
        store._keyword(query, 5, nothing, None, pg_bm25.full_scan),
    )
    assert trace and all(t[0] != "packed" for t in trace)
    store.close()


def test_deleted_chunks_count_toward_the_next_pack_and_the_postings_bound(
    corpus, pg_dsn: str, pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # After most documents are deleted, their postings stay in the packed lists: optimize must pack
    # again, and until then the bound on postings read must count them (a tenant off-boarded must
    # not leave every question copying the old index).

    source, vocab = corpus
    store, rows = _copy(source, pg_dsn, pg_schema, pool_size=2)
    store.pack_postings()
    store.delete_documents(sorted({r["doc_id"] for r in rows})[20:])  # 360 of 400 chunks gone
    with store.pool.connection() as conn:
        _, changed, n = pg_packed.state(conn)
    assert n == 40 and changed == 360
    query = f"{vocab[0]} {vocab[1]}"
    with store.pool.connection() as conn:
        live = conn.execute("SELECT sum(df) FROM lexeme_df WHERE lexeme = ANY(%s)", [[vocab[0], vocab[1]]]).fetchone()[
            0
        ]
    monkeypatch.setattr(pg_packed, "POSTINGS_MAX", int(live) * 2)  # above the live postings, below the packed
    monkeypatch.setattr(pg_packed, "DELTA_FLOOR", 10_000)  # keep the packed path in reach
    trace: list = []
    _same(store._keyword(query, 5, None, None, _traced(trace)), store._keyword(query, 5, None, None, pg_bm25.full_scan))
    assert trace and all(t[0] != "packed" for t in trace)
    monkeypatch.setattr(pg_packed, "PACK_FLOOR", 10)
    store.optimize()  # 360 deleted > max(10, 4): packs
    with store.pool.connection() as conn:
        assert pg_packed.state(conn)[1] == 0
    trace.clear()
    _same(store._keyword(query, 5, None, None, _traced(trace)), store._keyword(query, 5, None, None, pg_bm25.full_scan))
    assert [t[0] for t in trace] == ["packed"]
    store.close()


def test_searches_during_writes_and_packs_equal_the_full_scan_of_their_snapshot(
    corpus, pg_dsn: str, pg_schema: str
) -> None:
    # The attack on the log-structured layout: while one thread rewrites documents and packs over and
    # over, readers compare the packed search with the full scan inside the same snapshot; a pack
    # that let a search see a half-written list or lose the delta would differ.
    import threading
    import time

    source, vocab = corpus
    store, rows = _copy(source, pg_dsn, pg_schema, pool_size=4)
    chunks = [chunk_from_row(r, r["vector"]) for r in rows[:80]]
    stop, errors, compared = threading.Event(), [], [0]

    def write() -> None:
        rng = np.random.default_rng(5)
        try:
            for i in range(12):
                changed = [dataclasses.replace(c, text=" ".join(rng.choice(vocab, size=15))) for c in chunks]
                store.replace_documents({c.doc_id: f"h{i}" for c in changed}, changed, "p")
                if i % 3 == 1:
                    store.pack_postings()
                # Readers compare at least twice per write (on a busy machine the writer could
                # otherwise finish before they start).
                deadline = time.monotonic() + 60
                while compared[0] < 2 * (i + 1) and time.monotonic() < deadline:
                    time.sleep(0.005)
        except Exception as exc:  # reported by the test
            errors.append(exc)
        finally:
            stop.set()

    def both(conn, lang, query, top_k, clause, params, budget_s):
        packed = pg_packed.top_k(conn, lang, query, top_k, clause, params, budget_s)
        full = pg_bm25.full_scan(conn, lang, query, top_k, clause, params, budget_s)
        assert [r[0] for r in packed if r[1] > packed[-1][1] + 1e-9] == [
            r[0] for r in full if r[1] > full[-1][1] + 1e-9
        ]
        assert [r[1] for r in packed] == pytest.approx([r[1] for r in full], rel=1e-9)
        compared[0] += 1
        return packed

    writer = threading.Thread(target=write)
    writer.start()
    queries = _queries(vocab, 10_000, 13)
    try:
        while not stop.is_set():
            query, top_k, where, access = next(queries)
            store._keyword(query, top_k, where, access, both)
    finally:
        writer.join()
    assert not errors and compared[0] >= 24, (errors, compared)
    store.close()


def test_common_terms_are_not_scanned(corpus) -> None:
    # A rare term decides the top 5; the commonest terms stay non-essential, so fewer chunks are
    # scored than the full scan scores (every chunk holding any term).
    store, vocab = corpus
    query = f"{vocab[0]} {vocab[1]} {vocab[2]} {vocab[-12]}"
    trace: list[tuple[int, int]] = []

    def traced(*args):
        return pg_bm25.top_k(*args, trace=trace)

    _same(store._keyword(query, 5, None, None, traced), store._keyword(query, 5, None, None, pg_bm25.full_scan))
    with store.pool.connection() as conn:
        matching = conn.execute(
            "SELECT count(*) FROM chunks WHERE tsv @@ %s::tsquery",
            [
                pg_bm25.tsquery_of(
                    [
                        r[0]
                        for r in conn.execute("SELECT DISTINCT lexeme FROM unnest(to_tsvector('english', %s))", [query])
                    ]
                )
            ],
        ).fetchone()[0]
    essential, scored = trace[-1]
    assert essential < 4 and scored < matching, (trace, matching)


def test_a_filter_never_lets_another_tenants_chunk_in_and_still_fills_top_k(corpus) -> None:
    # The attack: the query's best chunks all belong to tenant "globex"; an "acme" caller must get
    # only acme's chunks (no group, or a group it has), and top_k of them when that many match.
    store, vocab = corpus
    query = " ".join(vocab[:6])
    everyone = store.keyword_search(query, 400)
    caller = Access(tenant="acme", groups=("eng",))
    visible = [h for h in everyone if caller.can_see(h.chunk.tenant, h.chunk.allowed_groups)]
    assert len(visible) >= 20
    hits = store.keyword_search(query, 20, access=caller)
    assert [h.chunk.chunk_id for h in hits] == [h.chunk.chunk_id for h in visible[:20]]
    hits = store.keyword_search(query, 15, parse_filter("year < 2012"), caller)
    assert len(hits) == 15
    assert all(h.chunk.tenant == "acme" and h.chunk.metadata["year"] < 2012 for h in hits)
    assert all(not h.chunk.allowed_groups or "eng" in h.chunk.allowed_groups for h in hits)


def test_a_write_between_searches_is_seen_and_ranking_stays_exact(corpus) -> None:
    store, vocab = corpus
    query = f"{vocab[0]} {vocab[40]} {vocab[41]}"
    extra = Chunk(
        chunk_id="new::0",
        doc_id="new",
        source="/src/new",
        position=0,
        text=f"{vocab[40]} {vocab[41]}",
        content_hash="hn",
        metadata={},
        vector=np.eye(DIM, dtype=np.float32)[0],
    )
    store.replace_documents({"new": "h"}, [extra], "p")
    try:
        new = store.keyword_search(query, 10)
        assert new[0].chunk.chunk_id == "new::0"
        _same(new, store._keyword(query, 10, None, None, pg_bm25.full_scan))
    finally:
        store.delete_documents(["new"])
    assert "new::0" not in {h.chunk.chunk_id for h in store.keyword_search(query, 10)}


def _small_store(dsn: str, schema: str):
    from groundwork.index.postgres import PgStore

    store = PgStore.connect(dsn, DIM, IndexSettings(), schema=schema, pool_size=2)
    store.check_model("m", DIM)
    rows = [
        Chunk(
            chunk_id=f"{d}::{i}",
            doc_id=d,
            source=f"/src/{d}",
            position=i,
            text=text,
            content_hash=f"h{d}{i}",
            metadata={},
            vector=np.eye(DIM, dtype=np.float32)[i % DIM],
        )
        for d, texts in {
            "pumps": ["the pump impeller pump seal", "pump pressure weekly"],
            "valves": ["valve replaced yearly", "valve seal and pump"],
            "canteen": ["lunch menu soup"],
        }.items()
        for i, text in enumerate(texts)
    ]
    store.replace_documents({c.doc_id: "h" for c in rows}, rows, "p")
    return store, rows


def test_postings_follow_every_write_and_check_repairs_them(pg_dsn: str, pg_schema: str) -> None:
    import psycopg

    store, rows = _small_store(pg_dsn, pg_schema)
    changed = dataclasses.replace(rows[0], text="impeller impeller balance")
    store.replace_documents({"pumps": "h2"}, [changed], "p")  # replace: a document's chunks change
    store.delete_documents(["canteen"])
    store.drop_rows(["valves::1"])
    assert store.recount_statistics() == []  # postings equal a recount from the stored tsvectors
    other = f"{pg_schema}_b"
    try:
        from groundwork.index.postgres import PgStore

        copy = PgStore.connect(pg_dsn, DIM, IndexSettings(), schema=other, pool_size=2)
        copy.check_model("m", DIM)
        copy.import_rows(list(store.export_rows()))
        assert copy.recount_statistics() == []
        assert [h.chunk.chunk_id for h in copy.keyword_search("impeller valve", 5)] == ["pumps::0", "valves::0"]
        copy.close()
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {other} CASCADE")
    with psycopg.connect(pg_dsn, autocommit=True) as conn:  # what a writer that skipped the postings leaves
        conn.execute(f"DELETE FROM {pg_schema}.postings WHERE lexeme = 'impel'")
        conn.execute(f"UPDATE {pg_schema}.postings SET tf = tf + 3 WHERE lexeme = 'valv'")
    found = store.recount_statistics()
    assert [m.name for m in found] == ["postings"] and "differ" in found[0].note
    store.recount_statistics(apply=True)
    assert store.recount_statistics() == []
    hits = store.keyword_search("impeller valve", 5)
    _same(hits, store._keyword("impeller valve", 5, None, None, pg_bm25.full_scan))
    store.close()


def test_check_finds_packed_lists_that_differ_from_the_postings_and_repair_packs_them(
    pg_dsn: str, pg_schema: str
) -> None:
    """The packed lists are a second copy of the postings: a list that lost, gained or changed a
    record ranks wrongly, so `check` compares them (the records of chunks deleted since the pack
    excepted: they are expected there) and `check --repair` packs them again."""
    import psycopg

    store, rows = _small_store(pg_dsn, pg_schema)
    store.pack_postings()
    store.delete_documents(["canteen"])  # its records stay in the lists until the next pack
    store.replace_documents({"pumps": "h2"}, [dataclasses.replace(rows[0], text="impeller impeller")], "p")
    assert store.recount_statistics() == []
    with psycopg.connect(pg_dsn, autocommit=True) as conn:  # four lists damaged
        t = f"{pg_schema}.postings_packed"
        conn.execute(f"UPDATE {t} SET postings = substring(postings from 17) WHERE lexeme = 'valv'")  # lost
        conn.execute(f"UPDATE {t} SET postings = postings || postings WHERE lexeme = 'seal'")  # repeated
        conn.execute(
            f"UPDATE {t} SET postings = set_byte(postings, 11, get_byte(postings, 11) + 1) WHERE lexeme = 'year'"
        )
        conn.execute(f"UPDATE {t} SET postings = set_byte(postings, 0, 127) WHERE lexeme = 'replac'")  # row 2^62+
    found = {m.name: m for m in store.recount_statistics()}
    assert list(found) == ["postings_packed"] and found["postings_packed"].note.startswith("4 lexemes")
    store.recount_statistics(apply=True)
    assert store.recount_statistics() == []
    for q in ("valve seal", "pump yearly"):
        _same(store.keyword_search(q, 5), store._keyword(q, 5, None, None, pg_bm25.full_scan))
    store.close()


def test_migration_builds_the_postings_of_an_existing_database(pg_dsn: str, pg_schema: str) -> None:
    import psycopg

    from groundwork.index.pg_schema import migrate

    store, _ = _small_store(pg_dsn, pg_schema)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:  # a database from before migration 193
        conn.execute(f"DROP TABLE {pg_schema}.postings, {pg_schema}.chunk_rows, {pg_schema}.postings_packed")
        conn.execute(f"DELETE FROM {pg_schema}.schema_migrations WHERE version IN (193, 194)")
    assert migrate(pg_dsn, pg_schema, DIM) == [193, 194]
    assert store.recount_statistics() == []
    with store.pool.connection() as conn:
        assert pg_packed.state(conn)[1] == 0  # packed by the migration: nothing written since
    trace: list = []
    _same(
        store._keyword("pump seal", 5, None, None, _traced(trace)),
        store._keyword("pump seal", 5, None, None, pg_bm25.full_scan),
    )
    assert [t[0] for t in trace] == ["packed"]
    _same(store.keyword_search("pump seal", 5), store._keyword("pump seal", 5, None, None, pg_bm25.full_scan))
    store.close()
