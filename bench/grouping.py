"""What grouping results by document costs: latency added per search, on the SciFact eval index.

For each SciFact train query with judgments (the first N) and each mode, the same search runs twice,
in alternating order: ranked chunks (``SearchPipeline.search``, top_k 10) and distinct documents
(``SearchPipeline.search_documents``, top_k 10). Reported per mode, in ms, query embedding included:
p50 of each, the p50 of the per-query difference (the latency grouping adds), and the p50 of the
grouping step alone; also the mean number of distinct documents among the top 10 chunks, the mean
chunk depth grouped, and the share of queries whose first chunk list held fewer than 10 documents
(the search deepened). The index is the one `groundwork eval` builds and caches.

Usage: python bench/grouping.py [--queries 300] [--cache DIR]   -> bench/results/grouping.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

from groundwork import load_settings
from groundwork.evaluate.datasets import load_beir
from groundwork.evaluate.index_cache import open_index

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = ROOT.parent / "shared/data/scifact"
TOP_K = 10
WARM_UP = 10


def _timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, (time.perf_counter() - t0) * 1000


def measure(pipeline, queries: list[str], mode: str) -> dict[str, float]:
    chunk_ms, doc_ms, added, group_ms, distinct, depth, deepened = [], [], [], [], [], [], 0
    for q in queries[:WARM_UP]:
        pipeline.search(q, mode, TOP_K)
        pipeline.search_documents(q, mode, TOP_K)
    for i, q in enumerate(queries):
        # alternate which runs first, so neither side always finds the caches warmed by the other
        if i % 2:
            docs, d_ms = _timed(pipeline.search_documents, q, mode, TOP_K)
            hits, c_ms = _timed(pipeline.search, q, mode, TOP_K)
        else:
            hits, c_ms = _timed(pipeline.search, q, mode, TOP_K)
            docs, d_ms = _timed(pipeline.search_documents, q, mode, TOP_K)
        chunk_ms.append(c_ms)
        doc_ms.append(d_ms)
        added.append(d_ms - c_ms)
        group_ms.append(docs.timings_ms["group"])
        distinct.append(len({h.chunk.doc_id for h in hits.hits}))
        depth.append(docs.chunks)
        deepened += docs.chunks > max(TOP_K, pipeline.retriever.settings.candidates)
    return {
        "chunks_p50_ms": statistics.median(chunk_ms),
        "documents_p50_ms": statistics.median(doc_ms),
        "added_p50_ms": statistics.median(added),
        "group_step_p50_ms": statistics.median(group_ms),
        "distinct_docs_in_top10_chunks": statistics.fmean(distinct),
        "mean_chunks_grouped": statistics.fmean(depth),
        "deepened_share": deepened / len(queries),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--data", default=str(SCIFACT))
    ap.add_argument("--cache", type=Path, default=None, help="eval index cache [default: as groundwork eval]")
    ap.add_argument("--out", default=str(ROOT / "bench/results/grouping.json"))
    args = ap.parse_args()

    data = Path(args.data)
    dataset = load_beir(data / "corpus.jsonl", data / "queries.jsonl", data / "qrels" / "train.tsv")
    kb = open_index(dataset, load_settings(), args.cache)
    queries = [q.question for q in dataset.queries][: args.queries]
    modes = {mode: measure(kb.pipeline, queries, mode) for mode in ("bm25", "dense", "hybrid")}

    print(f"SciFact train, {len(queries)} queries, {kb.count_chunks()} chunks, top_k {TOP_K}; ms")
    head = ("mode", "chunks p50", "documents p50", "added p50", "group step p50", "docs in top-10 chunks", "deepened")
    print(" | ".join(head))
    for m, v in modes.items():
        print(
            f"{m} | {v['chunks_p50_ms']:.1f} | {v['documents_p50_ms']:.1f} | {v['added_p50_ms']:.1f} | "
            f"{v['group_step_p50_ms']:.3f} | {v['distinct_docs_in_top10_chunks']:.2f} | {100 * v['deepened_share']:.1f}%"
        )
    out = {
        "queries": len(queries),
        "chunks": kb.count_chunks(),
        "top_k": TOP_K,
        "modes": modes,
        "machine": f"{platform.machine()} cores={os.cpu_count()}",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
