"""Calibrate the extractive generator's abstention threshold on MultiHop-RAG dev.

Runs `ask` (default settings, abstention disabled) on every dev query and records the evidence score,
the cosine similarity of the best context sentence to the question. Null queries ("Insufficient
information.") should be abstained on; the others should not. For each candidate threshold it reports
the abstention rate on null queries and the false-abstention rate on answerable ones, and Youden's
J = abstention(null) - false_abstention(answerable). The chosen threshold is the lowest one whose J is
within 0.02 of the best J: where J is flat, answering wins over abstaining.

Usage: python bench/abstention.py --kb /tmp/mh/kb   (after ingesting the corpus, see multihop_search.py)
Writes bench/results/abstention.json.
"""

from __future__ import annotations

import argparse
import json
import platform
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from groundwork import KnowledgeBase, load_settings

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kb", default="/tmp/mh/kb")
    ap.add_argument("--queries", default=str(ROOT.parent / "shared/data/multihop-rag/queries-dev.json"))
    ap.add_argument("--limit", type=int, default=0, help="use only the first N queries (0 = all)")
    ap.add_argument("--out", default=str(ROOT / "bench/results/abstention.json"))
    args = ap.parse_args()

    queries = json.loads(Path(args.queries).read_text())
    if args.limit:
        queries = queries[: args.limit]
    kb = KnowledgeBase(settings=load_settings(kb=args.kb, **{"answer.abstain_threshold": -1.0}))
    null, answerable = [], []
    for q in queries:
        score = kb.ask(q["query"]).evidence_score
        (null if q["question_type"] == "null_query" else answerable).append(-1.0 if score is None else score)
    null_a, ans_a = np.array(null), np.array(answerable)
    grid = [round(t, 2) for t in np.arange(0.20, 0.71, 0.02)]
    rows = [
        {"threshold": t, "abstain_null": float(np.mean(null_a < t)), "false_abstain": float(np.mean(ans_a < t))}
        for t in grid
    ]
    for r in rows:
        r["youden_j"] = r["abstain_null"] - r["false_abstain"]
    top_j = max(r["youden_j"] for r in rows)
    best = min((r for r in rows if r["youden_j"] >= top_j - 0.02), key=lambda r: r["threshold"])
    print(
        f"{len(null)} null, {len(answerable)} answerable queries; evidence score mean null {null_a.mean():.3f}, answerable {ans_a.mean():.3f}"
    )
    print(f"{'threshold':>9} {'abstain(null)':>14} {'false abstain':>14} {'J':>6}")
    for r in rows:
        mark = "  <- chosen" if r is best else ("  <- best J" if r["youden_j"] == top_j else "")
        print(f"{r['threshold']:9.2f} {r['abstain_null']:14.3f} {r['false_abstain']:14.3f} {r['youden_j']:6.3f}{mark}")
    out = {
        "benchmark": "multihop-rag dev abstention",
        "queries": len(queries),
        "chosen": best,
        "best_j": top_j,
        "grid": rows,
        "null_scores": null,
        "answerable_scores": answerable,
        "machine": f"{platform.machine()} cores={__import__('os').cpu_count()}",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
