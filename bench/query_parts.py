"""The parts of a hybrid search on the embedded store, each through LanceDB's sync query API and through
the path the store takes now (index/lance_reads.py), interleaved per question in one run.

Per question (the embedding computed once, before timing; the order of the two ways alternates):

- ``one-row read``: ``Table.search().limit(1)`` through LanceDB against pylance's ``to_table(limit=1)``
  (the fixed cost of a query);
- ``vector ranking, top 100``: LanceDB's vector query (ids and distances) against
  ``LanceStore.vector_ranking`` (in-memory exact search below ``index.ann_min_rows``; HNSW through
  pylance above it);
- ``reading 10 kept rows``: LanceDB's ``take_row_ids`` against ``LanceStore.chunks_at`` (pylance's
  take by row id), the chunk columns and the vector, rows of the question's dense top 10;
- ``keyword ranking, top 100``: ``LanceStore.keyword_ranking`` (LanceDB in both: one figure).

Printed: p50 / p95 in ms per part and way, the ratio of p50s (now / LanceDB), whether the vector
rankings were the same chunks in the same order, and the machine's load (bench/machine.py).

Usage: python bench/query_parts.py --kb KB [--questions FILE] [--queries 100]
           [--out bench/results/query_parts.json]
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from groundwork import KnowledgeBase, load_settings
from groundwork.index.lance_rows import CHUNK_COLUMNS
from machine import Load

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = ROOT.parent / "shared/data/scifact"


def timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return (time.perf_counter() - t0) * 1000, out


def ways(store, question: str, vector: np.ndarray, kept: list) -> dict[str, dict]:
    """part -> {way: zero-argument call}; 'lancedb' is LanceDB's sync query, 'now' the store's path."""
    table, ds = store._chunks, store._dataset()
    ids = [int(r.ref) for r in kept]
    vector_query = store._vector_query(vector, None, None).select(["chunk_id", "_distance"]).with_row_id(True)
    return {
        "one-row read": {
            "lancedb": lambda: table.search().select(["chunk_id"]).limit(1).to_arrow(),
            "now": lambda: ds.to_table(columns=["chunk_id"], limit=1),
        },
        "vector ranking, top 100": {
            "lancedb": lambda: store._read(vector_query.limit(100)).column("chunk_id").to_pylist(),
            "now": lambda: [r.chunk_id for r in store.vector_ranking(vector, 100)],
        },
        "reading 10 kept rows": {
            "lancedb": lambda: store._read(table.take_row_ids(ids).select([*CHUNK_COLUMNS, "vector"]).with_row_id()),
            "now": lambda: store.chunks_at(kept),
        },
        "keyword ranking, top 100": {"now": lambda: store.keyword_ranking(question, 100)},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kb", type=Path, required=True, help="a knowledge-base folder (LanceDB)")
    ap.add_argument("--questions", type=Path, default=SCIFACT / "queries.jsonl")
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/query_parts.json")
    args = ap.parse_args()
    if not (args.kb / "meta.json").is_file():
        raise SystemExit(f"{args.kb}: not a knowledge-base folder")
    kb = KnowledgeBase(settings=load_settings(kb=args.kb, **{"audit.enabled": False, "cache.enabled": False}))
    store = kb.store
    texts = [json.loads(x)["text"] for x in args.questions.read_text().splitlines() if x.strip()]
    questions = texts[: args.queries + 10]
    vectors = kb.embedder.embed(questions)
    kept = [store.vector_ranking(v, 10) for v in vectors]
    times: dict[str, dict[str, list[float]]] = {}
    same = 0
    load = Load()
    for i, (q, v) in enumerate(zip(questions, vectors)):
        warm = i < 10
        for part, calls in ways(store, q, v, kept[i]).items():
            results = {}
            for way in list(calls) if i % 2 else list(calls)[::-1]:
                ms, results[way] = timed(calls[way])
                if not warm:
                    times.setdefault(part, {}).setdefault(way, []).append(ms)
            if part.startswith("vector") and not warm:
                same += results["lancedb"] == results["now"]
    machine = load.report()
    out = {}
    print(f"{store._chunks.count_rows()} chunks, ANN index: {store.has_ann_index()}, {args.queries} questions (ms)")
    print(f"{'part':28}{'LanceDB p50':>12}{'p95':>8}{'now p50':>10}{'p95':>8}{'ratio':>8}")
    for part, by_way in times.items():
        row = {
            w: {"p50_ms": round(float(np.percentile(t, 50)), 2), "p95_ms": round(float(np.percentile(t, 95)), 2)}
            for w, t in by_way.items()
        }
        old = row.get("lancedb", {"p50_ms": float("nan"), "p95_ms": float("nan")})
        ratio = row["now"]["p50_ms"] / old["p50_ms"] if "lancedb" in row else float("nan")
        out[part] = {**row, "ratio_p50": round(ratio, 3)}
        print(
            f"{part:28}{old['p50_ms']:>12}{old['p95_ms']:>8}{row['now']['p50_ms']:>10}{row['now']['p95_ms']:>8}{ratio:>8.2f}"
        )
    print(f"vector rankings identical (ids, order): {same}/{args.queries}")
    print(f"machine: {machine}")
    result = {
        "kb": str(args.kb),
        "chunks": store._chunks.count_rows(),
        "ann_index": store.has_ann_index(),
        "questions": args.queries,
        "parts": out,
        "vector_rankings_identical": same,
        "machine": machine,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
