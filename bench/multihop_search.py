"""MultiHop-RAG dev: how often does `groundwork search` put the evidence articles in the top 10?

For every non-null query of queries-dev.json, searches the knowledge base (the same code path as
`groundwork search --json`) and checks which evidence articles (by url = doc_id) appear among the
documents of the top-k chunks. Reports, per question type and overall:
  any@k  share of queries with at least one evidence article in the top k
  all@k  share of queries with every evidence article in the top k
  recall@k  mean share of a query's evidence articles found
Latency is a new question's (``groundwork.evaluate.retrieval.new_questions``: each mode runs on an
empty embedding cache of its own, so hybrid does not find the questions dense embedded).
Prints a table and writes bench/results/multihop_search.json.

Usage:
  groundwork --kb /tmp/mh/kb ingest ../shared/data/multihop-rag/corpus.json \
      --text-field body --id-field url --metadata-fields title,source,category,published_at
  python bench/multihop_search.py --kb /tmp/mh/kb [--modes bm25,dense,hybrid] [--top-k 10]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

from groundwork import KnowledgeBase, load_settings
from groundwork.evaluate.retrieval import WARM_UP, new_questions

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kb", default="/tmp/mh/kb")
    ap.add_argument("--queries", default=str(ROOT.parent / "shared/data/multihop-rag/queries-dev.json"))
    ap.add_argument("--modes", default="bm25,dense,hybrid")
    ap.add_argument("--top-k", type=int, default=10)
    ap.add_argument("--out", default=str(ROOT / "bench/results/multihop_search.json"))
    args = ap.parse_args()

    queries = [q for q in json.loads(Path(args.queries).read_text()) if q["question_type"] != "null_query"]
    kb = KnowledgeBase(settings=load_settings(kb=args.kb))
    results: dict[str, dict] = {}
    for mode in args.modes.split(","):
        per_type: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
        latencies = []
        kb.search(WARM_UP, mode=mode, top_k=args.top_k)
        with new_questions(kb) as fresh:
            fresh.search(WARM_UP, mode=mode, top_k=args.top_k)
            for q in queries:
                gold = {e["url"] for e in q["evidence_list"]}
                t0 = time.perf_counter()
                hits = fresh.search(q["query"], mode=mode, top_k=args.top_k)
                latencies.append((time.perf_counter() - t0) * 1000)
                found = gold & {h.chunk.doc_id for h in hits}
                row = (float(bool(found)), float(found == gold), len(found) / len(gold))
                per_type[q["question_type"]].append(row)
                per_type["all"].append(row)
        results[mode] = {
            t: {
                "queries": len(rows),
                f"any@{args.top_k}": statistics.mean(r[0] for r in rows),
                f"all@{args.top_k}": statistics.mean(r[1] for r in rows),
                f"recall@{args.top_k}": statistics.mean(r[2] for r in rows),
            }
            for t, rows in sorted(per_type.items())
        }
        results[mode]["latency_ms_p50"] = statistics.median(latencies)
        results[mode]["latency_ms_p95"] = statistics.quantiles(latencies, n=20)[18]

    k = args.top_k
    print(f"MultiHop-RAG dev, {len(queries)} non-null queries, evidence articles among the top {k} chunks' documents")
    print(f"{'mode':8} {'type':18} {'n':>4} {'any@' + str(k):>8} {'all@' + str(k):>8} {'recall@' + str(k):>10}")
    for mode, by_type in results.items():
        for t, m in by_type.items():
            if isinstance(m, dict):
                print(
                    f"{mode:8} {t:18} {m['queries']:4d} {m[f'any@{k}']:8.3f} {m[f'all@{k}']:8.3f} {m[f'recall@{k}']:10.3f}"
                )
        print(f"{mode:8} latency p50 {by_type['latency_ms_p50']:.1f} ms, p95 {by_type['latency_ms_p95']:.1f} ms")
    settings = kb.settings
    out = {
        "benchmark": "multihop-rag dev search",
        "top_k": k,
        "results": results,
        "chunking": settings.chunking.model_dump(),
        "chunks": kb.count_chunks(),
        "machine": f"{platform.machine()} {platform.processor() or ''} cores={__import__('os').cpu_count()}",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
