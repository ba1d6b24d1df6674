"""Calibrate and measure the contextual grounding check (groundwork.guard.grounding) on MultiHop-RAG dev.

For each answerable query, the "answer" is its gold evidence facts (verbatim article sentences).
  grounded case:   context = windows of +-3 sentences around each fact in its own article
  ungrounded case: the same answer, context = equally many windows from the articles of another
                   query (unrelated evidence)
Relevance uses the question with its own facts (relevant) vs another query's facts (irrelevant).
Thresholds are chosen on the even-numbered queries (maximum accuracy) and reported on the odd ones.

    python bench/grounding.py --data ../shared/data/multihop-rag [--queries 300]

Prints a table and writes bench/results/grounding.json.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from groundwork.config import EmbedderSettings
from groundwork.guard.grounding import grounding_scores
from groundwork.index.embedder import SentenceTransformerEmbedder
from groundwork.text import split_sentences


def windows(body: str, facts: list[str], width: int = 3) -> list[str]:
    sents = split_sentences(body)
    squash = [" ".join(s.split()) for s in sents]
    out = []
    for fact in facts:
        f = " ".join(fact.split())[:60]
        idx = next((i for i, s in enumerate(squash) if f[:40] in s), None)
        if idx is None:
            out.append(fact)
            continue
        out.append(" ".join(sents[max(0, idx - width) : idx + width + 1]))
    return out


def best_threshold(pos: list[float], neg: list[float]) -> tuple[float, float]:
    cands = sorted({round(x, 3) for x in pos + neg})
    best = (0.0, 0.0)
    for t in cands:
        acc = (sum(p >= t for p in pos) + sum(n < t for n in neg)) / (len(pos) + len(neg))
        if acc > best[1]:
            best = (t, acc)
    return best


def accuracy(pos: list[float], neg: list[float], t: float) -> float:
    return (sum(p >= t for p in pos) + sum(n < t for n in neg)) / (len(pos) + len(neg))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path("../shared/data/multihop-rag"))
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--out", type=Path, default=Path("bench/results/grounding.json"))
    args = ap.parse_args()
    corpus = {a["url"]: a["body"] for a in json.loads((args.data / "corpus.json").read_text())}
    queries = [
        q for q in json.loads((args.data / "queries-dev.json").read_text()) if q["question_type"] != "null_query"
    ]
    random.seed(13)
    queries = random.sample(queries, min(args.queries, len(queries)))
    emb = SentenceTransformerEmbedder(EmbedderSettings(cache=False))
    t0 = time.perf_counter()
    rows = []
    for i, q in enumerate(queries):
        other = queries[(i + len(queries) // 2) % len(queries)]
        facts = [e["fact"] for e in q["evidence_list"]]
        answer = " ".join(facts)
        ctx = [w for e in q["evidence_list"] for w in windows(corpus[e["url"]], [e["fact"]])]
        unrelated = [w for e in other["evidence_list"] for w in windows(corpus[e["url"]], [e["fact"]])]
        g_pos = grounding_scores(emb, q["query"], answer, ctx)
        g_neg = grounding_scores(emb, q["query"], answer, unrelated)
        r_neg = grounding_scores(emb, q["query"], " ".join(e["fact"] for e in other["evidence_list"]), unrelated)
        rows.append(
            {
                "type": q["question_type"],
                "g_pos": g_pos.grounding,
                "g_neg": g_neg.grounding,
                "r_pos": g_pos.relevance,
                "r_neg": r_neg.relevance,
            }
        )
    secs = time.perf_counter() - t0
    tune, test = rows[0::2], rows[1::2]
    result: dict = {"queries": len(rows), "seconds": round(secs, 1), "method": "bundled MiniLM, bench/grounding.py"}
    for score in ("g", "r"):
        t, tune_acc = best_threshold([r[f"{score}_pos"] for r in tune], [r[f"{score}_neg"] for r in tune])
        test_acc = accuracy([r[f"{score}_pos"] for r in test], [r[f"{score}_neg"] for r in test], t)
        name = "grounding" if score == "g" else "relevance"
        result[name] = {
            "threshold": t,
            "accuracy_tune": round(tune_acc, 4),
            "accuracy_test": round(test_acc, 4),
            "mean_supported": round(float(np.mean([r[f"{score}_pos"] for r in rows])), 4),
            "mean_unsupported": round(float(np.mean([r[f"{score}_neg"] for r in rows])), 4),
        }
        for default in (0.5, 0.3):
            result[name][f"accuracy_test_at_{default}"] = round(
                accuracy([r[f"{score}_pos"] for r in test], [r[f"{score}_neg"] for r in test], default), 4
            )
    print(f"{'check':<10} {'threshold':>9} {'acc tune':>9} {'acc test':>9} {'mean +':>8} {'mean -':>8}")
    for name in ("grounding", "relevance"):
        r = result[name]
        print(
            f"{name:<10} {r['threshold']:>9.3f} {r['accuracy_tune']:>9.4f} {r['accuracy_test']:>9.4f} "
            f"{r['mean_supported']:>8.4f} {r['mean_unsupported']:>8.4f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out} ({secs:.0f} s)")


if __name__ == "__main__":
    main()
