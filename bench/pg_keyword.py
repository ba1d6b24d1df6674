"""PostgreSQL keyword side: full scan, MaxScore, packed postings lists; BM25 and hybrid latency, identical rankings, write cost.

Builds (or reuses, in ``--work``) the chunk set of bench/scale_data.py in PostgreSQL through
bench/scale.py's ``load`` / ``build`` / ``local_postgres``, then per query, interleaved (the order of
the two alternates from query to query):

- bm25: ``PgStore.keyword_search`` (the packed postings lists, ``pg_packed.top_k``, packed once
  after the build: ``pack_s``) against MaxScore in SQL (``pg_bm25.top_k``) and the first full-scan
  query (``pg_bm25.full_scan``), top_k 10, without and with the filter ``bucket = 3`` (10% of the
  chunks), and top_k 100 (the depth hybrid search asks the keyword side for); p50/p95/p99 in ms;
  the rankings compared with the full scan's (ids and order equal, scores within 1e-9 relative);
- hybrid: ``KnowledgeBase.search(mode="hybrid")``, query embedding included (embedding and retrieval
  caches off), with the store's keyword search being MaxScore or the packed lists; p50/p99 in ms;
- chunks scored per query (median): the full scan scores every chunk holding any query lexeme,
  MaxScore only those holding an essential term (last round);
- disk: ``pg_total_relation_size`` of ``chunks`` and of ``postings``;
- write: one 1,000-chunk batch ``replace_documents`` (new documents) then ``delete_documents``,
  ``--writes`` times each with and without the postings maintenance (interleaved).

Usage (data as in docs/benchmarks.md "Scale: 100k chunks, both stores"):
  python bench/scale_data.py --out /tmp/scale-eval --from-index ~/.cache/groundwork/eval/scifact-<key> \
      ~/.cache/groundwork/eval/multihop-rag-<key>
  python bench/pg_keyword.py --data /tmp/scale-eval --multiply 5 --work /tmp/pgkw [--build-only]
Writes bench/results/pg-keyword-<n>.json. Prints the load average: other processes skew the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from groundwork import KnowledgeBase, load_settings
from groundwork.filters import parse_filter
from groundwork.index import pg_bm25, pg_packed
from groundwork.types import Access
from machine import Load
from scale import build, chunk_of, load, local_postgres, pct

ROOT = Path(__file__).resolve().parents[1]


def same(new, old) -> bool:
    """Same ranking: scores within 1e-9 relative at every rank, and the same chunks at every rank but
    among tied scores (the full scan's float sums of one text's copies differ in the last bits, which
    then decide their order); the last tie group may be cut at different copies. Ties are runs of
    ranks whose scores are within 1e-9 relative of the run's first (not rounded values: a rounding
    boundary can fall inside a run)."""
    if len(new) != len(old) or any(abs(a.score - b.score) > 1e-9 * abs(b.score) for a, b in zip(new, old)):
        return False
    runs, start = [], 0
    for i in range(1, len(old) + 1):
        if i == len(old) or abs(old[i].score - old[start].score) > 1e-9 * abs(old[start].score):
            runs.append((start, i))
            start = i
    return all({h.chunk.chunk_id for h in new[a:b]} == {h.chunk.chunk_id for h in old[a:b]} for a, b in runs[:-1])


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return (time.perf_counter() - t0) * 1000, out


def summary(ms: list[float]) -> dict[str, float]:
    return {f"p{p}_ms": round(pct(ms, p), 2) for p in (50, 95, 99)}


LABELS = ("before", "maxscore", "after")  # full scan, MaxScore in SQL, packed lists (the store's default)


def keyword_runs(store, queries: list[str], labels: tuple[str, ...] = LABELS) -> dict:
    """Interleaved keyword searches (the order rotates per query): latency per variant and how many
    rankings are identical to the first variant's (the full scan's, or MaxScore's without it)."""
    access = Access.all()
    variants = {"bm25 top10": (10, None), "bm25 top10 +filter": (10, "bucket = 3"), "bm25 top100": (100, None)}
    out = {}
    for name, (k, flt) in variants.items():
        where = parse_filter(flt) if flt else None
        lat: dict[str, list[float]] = {label: [] for label in labels}
        identical = dict.fromkeys(labels[1:], 0)
        for i, q in enumerate(queries):
            runs = {
                "before": lambda q=q, k=k, w=where: store._keyword(q, k, w, access, pg_bm25.full_scan),
                "maxscore": lambda q=q, k=k, w=where: store._keyword(q, k, w, access, pg_bm25.top_k),
                "after": lambda q=q, k=k, w=where: store.keyword_search(q, k, w, access),
            }
            res = {}
            for label in labels[i % len(labels) :] + labels[: i % len(labels)]:
                ms, res[label] = timed(runs[label])
                lat[label].append(ms)
            for label in identical:
                identical[label] += same(res[label], res[labels[0]])
        out[name] = {label: summary(lat[label]) for label in labels} | {"identical": identical}
    return out


def scored_counts(store, queries: list[str]) -> dict:
    """Median chunks scored per query: full scan (every chunk holding a query lexeme) vs MaxScore."""
    full, pruned, rounds = [], [], []
    for q in queries:
        trace: list[tuple[int, int]] = []
        store._keyword(q, 10, None, None, lambda *a, trace=trace: pg_bm25.top_k(*a, trace=trace))
        if not trace:
            continue
        with store.pool.connection() as conn:
            words = conn.execute("SELECT array_agg(DISTINCT lexeme) FROM unnest(to_tsvector('english', %s))", [q])
            lexemes = words.fetchone()[0] or []
            full.append(pg_bm25._count(conn, pg_bm25.tsquery_of(lexemes), "TRUE", []))
        pruned.append(trace[-1][1])
        rounds.append(len(trace))
    return {
        "full_scan_median": statistics.median(full),
        "maxscore_median": statistics.median(pruned),
        "rounds_median": statistics.median(rounds),
        "rounds_max": max(rounds),
    }


def hybrid_runs(kb, queries: list[str]) -> dict:
    """Hybrid search with the store's BM25 ranker being MaxScore ("before") or the packed lists."""
    store = kb.store
    lat: dict[str, list[float]] = {"before": [], "after": []}
    for i, q in enumerate(queries):
        for label in ("before", "after") if i % 2 else ("after", "before"):
            store.bm25_ranker = pg_bm25.top_k if label == "before" else pg_packed.top_k
            lat[label].append(timed(lambda q=q: kb.search(q, mode="hybrid", top_k=10, access=Access.all()))[0])
    store.bm25_ranker = pg_packed.top_k
    return {label: {k: v for k, v in summary(ms).items() if k != "p95_ms"} for label, ms in lat.items()}


def write_cost(store, rows: list[dict], vecs: np.ndarray, repeats: int) -> dict:
    """Seconds for one 1,000-chunk batch (new documents) written, then deleted, with the postings
    maintained ("after") and, interleaved, without ("before": ``pg_upkeep.update_postings`` skipped for both the
    write and the delete, so the postings stay as they were)."""
    from groundwork.index import pg_upkeep

    keep = pg_upkeep.update_postings
    times: dict[str, dict[str, list[float]]] = {x: {"write": [], "delete": []} for x in ("before", "after")}
    for r in range(repeats):
        chunks = [chunk_of(row, vecs[i], f"w{r}-") for i, row in enumerate(rows[r * 1000 : (r + 1) * 1000])]
        docs = {c.doc_id: "h" for c in chunks}
        for label in ("before", "after") if r % 2 else ("after", "before"):
            pg_upkeep.update_postings = keep if label == "after" else lambda *a: None
            try:
                times[label]["write"].append(timed(lambda d=docs, c=chunks: store.replace_documents(d, c, "b"))[0])
                times[label]["delete"].append(timed(lambda d=docs: store.delete_documents(list(d)))[0])
            finally:
                pg_upkeep.update_postings = keep
    return {
        label: {f"{op}_ms_median": round(statistics.median(v), 1) for op, v in ops.items()}
        for label, ops in times.items()
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="/tmp/scale-eval")
    ap.add_argument("--chunks", type=int, default=1_000_000, help="chunks read from --data before --multiply")
    ap.add_argument("--multiply", type=int, default=5)
    ap.add_argument("--sigma", type=float, default=0.01)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--writes", type=int, default=6)
    ap.add_argument("--work", required=True, help="folder of the PostgreSQL data (reused when built)")
    ap.add_argument("--build-only", action="store_true")
    ap.add_argument("--maintenance-work-mem", default="2GB", help="PostgreSQL's, for the HNSW build")
    ap.add_argument(
        "--no-hnsw",
        action="store_true",
        help="no HNSW index (its build at 1M chunks takes hours on 2 cores): keyword side and writes only",
    )
    ap.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="a setting, e.g. embedder.backend=onnx"
    )
    ap.add_argument(
        "--no-full-scan", action="store_true", help="skip the full scan (seconds per question at 1M chunks)"
    )
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    data, work = Path(args.data), Path(args.work)
    rows, vecs = load(data, args.chunks, args.multiply, args.sigma)
    n = len(rows)
    server = local_postgres(work, args.maintenance_work_mem)
    overrides = {
        "embedder.cache": False,
        "cache.enabled": False,  # each question runs twice (before, after): no retrieval cache hits
        "index.ann_min_rows": 10**12 if args.no_hnsw else 1,
        "store": "postgres",
        "pg_dsn": server.dsn,
        "postgres.schema_name": f"scale_{n}",
    } | dict(kv.split("=", 1) for kv in args.set)
    kb = KnowledgeBase(settings=load_settings(kb=work / "kb", **overrides))
    kb.store.check_model(kb.embedder.model_id, kb.embedder.dimension)
    if kb.store.count_chunks() != n:
        if kb.store.count_chunks():
            raise SystemExit(f"{kb.store.path} holds another chunk set; use an empty --work")
        write_s, index_s = build(kb.store, rows, vecs)
        print(f"built {n} chunks: write {write_s:.1f} s, indexes {index_s:.1f} s")
    pack_s = timed(kb.store.pack_postings)[0] / 1000
    print(f"packed the postings lists in {pack_s:.1f} s")
    if args.build_only:
        return server.stop()

    texts = [json.loads(x)["text"] for x in (data / "queries.jsonl").read_text().splitlines()]
    pick = np.random.default_rng(1).choice(len(texts), size=min(args.queries + 20, len(texts)), replace=False)
    queries = [texts[i] for i in pick]
    for q in queries[:20]:  # warm-up: caches, pool, model
        kb.search(q, mode="bm25" if args.no_hnsw else "hybrid", top_k=10, access=Access.all())
        kb.store._keyword(q, 10, None, None, pg_bm25.top_k if args.no_full_scan else pg_bm25.full_scan)
    queries = queries[20:]
    load_meter = Load()
    labels = LABELS[1:] if args.no_full_scan else LABELS
    keyword = keyword_runs(kb.store, queries, labels)
    hybrid = {} if args.no_hnsw else hybrid_runs(kb, queries)
    writes = write_cost(kb.store, rows, vecs, args.writes)
    machine = load_meter.report()
    scored = {} if args.no_full_scan else scored_counts(kb.store, queries)
    disk = kb.store._query(
        "SELECT pg_total_relation_size('chunks'), pg_total_relation_size('postings'), "
        "pg_total_relation_size('postings_packed'), pg_total_relation_size('chunk_rows')"
    )[0]
    result = {
        "chunks": n,
        "settings": args.set,
        "pack_s": round(pack_s, 1),
        "disk_mb": dict(
            zip(("chunks", "postings", "postings_packed", "chunk_rows"), (round(d / 1e6, 1) for d in disk))
        ),
        "queries": len(queries),
        "keyword": keyword,
        "hybrid": hybrid,
        "chunks_scored": scored,
        "write_1000_chunks": writes,
        "machine": machine,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    out = Path(args.out or ROOT / f"bench/results/pg-keyword-{n}.json")
    out.write_text(json.dumps(result, indent=2))
    print(f"PostgreSQL keyword side, {n} chunks, {len(queries)} queries (ms; load {machine})")
    names = {"before": "full scan", "maxscore": "MaxScore", "after": "packed"}
    head = "".join(f"{names[x] + ' p50':>14}{'p95':>8}{'p99':>8}" for x in labels)
    print(f"{'':<24}{head}  identical to {names[labels[0]]}")
    for name, v in keyword.items():
        cells = "".join(f"{v[x]['p50_ms']:>14}{v[x]['p95_ms']:>8}{v[x]['p99_ms']:>8}" for x in labels)
        same_n = ", ".join(f"{names[x]} {c}/{len(queries)}" for x, c in v["identical"].items())
        print(f"{name:<24}{cells}  {same_n}")
    if hybrid:
        b, a = hybrid["before"], hybrid["after"]
        print(
            f"hybrid (embedding incl.): MaxScore p50 {b['p50_ms']} p99 {b['p99_ms']}; packed p50 {a['p50_ms']} p99 {a['p99_ms']}"
        )
    print(f"chunks scored per query: {scored}")
    print(f"disk (MB, indexes included): {result['disk_mb']}")
    print(f"1,000-chunk batch, median ms (before = without postings maintenance): {writes}")
    server.stop()


if __name__ == "__main__":
    main()
