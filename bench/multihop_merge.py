"""MultiHop-RAG dev: how should the lists of a decomposed question share the top 10?

For every answerable dev query, retrieves (hybrid, default settings) the question's list and, when
the heuristic decomposer splits it, each sub-question's list, once; then merges them every way
``retrieval.decompose_merge`` offers (rrf with original weight 1 and 2, interleave, coverage with 1
and 2 slots) with the same functions the search pipeline uses, and scores the top 10 chunks with the
official chunk-level metrics (hits@4, hits@10, mrr@10, map@10), overall and per question type. The
lists are retrieved once, so every merge is compared on identical candidates.

Usage (the index is the eval cache's, built on first use like `groundwork eval retrieval`):
  python bench/multihop_merge.py --corpus ../shared/data/multihop-rag/corpus.json \
      --queries ../shared/data/multihop-rag/queries-dev.json
Prints a table and writes bench/results/multihop_merge.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path

from groundwork import load_settings
from groundwork.evaluate.datasets import load_multihop
from groundwork.evaluate.index_cache import open_index
from groundwork.evaluate.metrics import multihop_metrics
from groundwork.retrieve.decompose import HeuristicDecomposer, coverage, interleave
from groundwork.retrieve.fusion import rrf_fusion

TOP_K = 10
MERGES = ("rrf w1", "rrf w2", "interleave", "coverage 1", "coverage 2")


def merges(lists: list, rrf_k: int) -> dict[str, list]:
    named = {f"q{i}": hits for i, hits in enumerate(lists)}
    return {
        "rrf w1": rrf_fusion(named, k=rrf_k, weights={"q0": 1.0})[:TOP_K],
        "rrf w2": rrf_fusion(named, k=rrf_k, weights={"q0": 2.0})[:TOP_K],
        "interleave": interleave(lists, TOP_K),
        "coverage 1": coverage(lists[0], lists[1:], TOP_K, 1, TOP_K),
        "coverage 2": coverage(lists[0], lists[1:], TOP_K, 2, TOP_K),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--queries", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=0, help="only the first N answerable queries (0 = all)")
    ap.add_argument("--out", type=Path, default=Path("bench/results/multihop_merge.json"))
    a = ap.parse_args()
    settings = load_settings()
    dataset = load_multihop(a.corpus, a.queries)
    kb = open_index(dataset, settings)
    retriever = kb.components.search_pipeline.retriever
    wide = max(TOP_K, settings.retrieval.candidates)
    decomposer = HeuristicDecomposer()
    rows: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    split = 0
    answerable = [q for q in dataset.queries if q.facts]  # null queries have no evidence: left out, as in the paper
    for q in answerable[: a.limit or None]:
        subs = decomposer.decompose(q.question)
        split += bool(subs)
        lists = [retriever.retrieve(x, None, wide if subs else TOP_K).hits for x in [q.question, *subs]]
        configs = {"single-shot": lists[0][:TOP_K]}
        # a question that does not split is searched single-shot whatever the merge
        configs |= merges(lists, settings.retrieval.rrf_k) if subs else dict.fromkeys(MERGES, lists[0][:TOP_K])
        for name, hits in configs.items():
            m = multihop_metrics([h.chunk.text for h in hits], q.facts)
            rows[name]["all"].append(m)
            rows[name][q.qtype].append(m)
    result = {
        name: {
            t: {k: round(statistics.fmean(r[k] for r in rs), 4) for k in rs[0]} | {"queries": len(rs)}
            for t, rs in by_type.items()
        }
        for name, by_type in rows.items()
    }
    result["_meta"] = {"split_queries": split, "top_k": TOP_K, "candidates": wide}
    print(f"{split} of {len(rows['single-shot']['all'])} answerable queries split by the heuristic")
    print(f"{'configuration':<14} {'type':<11} {'n':>4} {'hits@4':>7} {'hits@10':>8} {'mrr@10':>7} {'map@10':>7}")
    for name, by_type in result.items():
        if name.startswith("_"):
            continue
        for t, m in sorted(by_type.items()):
            print(
                f"{name:<14} {t:<11} {m['queries']:>4} {m['hits@4']:>7.3f} {m['hits@10']:>8.3f} "
                f"{m['mrr@10']:>7.3f} {m['map@10']:>7.3f}"
            )
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
