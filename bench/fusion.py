"""Fusion methods on SciFact train and MultiHop-RAG dev, measured offline on one index each.

For each dataset the eval index of the given settings (the `groundwork eval` cache) is opened, every
judged question is searched once per side, 100 chunks deep (groundwork.evaluate.candidates), and each
method below ranks from those lists with the fusion code the retriever runs; the figures are the ones
`groundwork eval retrieval` reports (SciFact: document-level nDCG@10 of 10 distinct abstracts;
MultiHop-RAG: the paper's chunk-level Hits@10 / MRR@10). Rows of the default's method can be
checked end to end with `groundwork eval retrieval ... --set retrieval.fusion=X` (docs/benchmarks.md).

Dense pseudo-relevance feedback (Rocchio 1971, "Relevance feedback in information retrieval"; as
applied to dense retrieval by Li et al. 2023, "Pseudo relevance feedback with deep language models
and dense retrievers", ACM TOIS): q' = q + beta * mean(top-n chunk vectors), renormalised, searched
again exactly over every chunk vector (the stores search exactly at these sizes, too).

Prints a table and writes bench/results/fusion.json. The lists are cached under /tmp by index key.

Usage:
  python bench/fusion.py [--data ../shared/data] [--set chunking.contextual=false] [--datasets scifact,multihop-rag]
"""

from __future__ import annotations

import argparse
import json
import pickle
import statistics
from dataclasses import replace
from pathlib import Path

import numpy as np

from groundwork import load_settings
from groundwork.evaluate.candidates import CandidateLists, Trial, collect_candidates, fused, query_metrics
from groundwork.evaluate.datasets import load_beir, load_multihop
from groundwork.evaluate.index_cache import index_key, open_index

ROOT = Path(__file__).resolve().parents[1]
DEPTH = 100


def datasets(data: Path) -> dict:
    sf = data / "scifact"
    mh = data / "multihop-rag"
    return {
        "scifact": lambda: load_beir(sf / "corpus.jsonl", sf / "queries.jsonl", sf / "qrels/train.tsv"),
        "multihop-rag": lambda: load_multihop(mh / "corpus.json", mh / "queries-dev.json"),
    }


def candidates(ds, settings) -> tuple[CandidateLists, np.ndarray, list[str]]:
    """The lists (cached in /tmp by index key), plus every chunk vector and id for the PRF rows."""
    path = Path(f"/tmp/gw-fusion-{ds.name}-{index_key(ds, settings)}.pkl")
    if path.exists():
        return pickle.loads(path.read_bytes())
    kb = open_index(ds, settings)
    c = collect_candidates(ds, kb, DEPTH)
    rows = kb.store._scan(["chunk_id", "vector"])  # a bench reading every vector once
    ids = rows.column("chunk_id").to_pylist()
    mat = np.asarray(rows.column("vector").to_pylist(), dtype=np.float32)
    path.write_bytes(pickle.dumps((c, mat, ids)))
    return c, mat, ids


def trials() -> list[Trial]:
    out = [Trial(mode="bm25"), Trial(mode="dense")]
    for w in (0.5, 0.6, 0.7, 0.8):
        for method in ("convex", "zscore", "dbsf", "combmnz", "adaptive"):
            out.append(Trial(fusion=method, bm25_weight=w, dense_weight=round(1 - w, 2)))
    for k in (10, 20, 60):
        for w in (0.5, 0.6, 0.7):
            out.append(Trial(fusion="rrf", rrf_k=k, bm25_weight=w, dense_weight=round(1 - w, 2)))
    out += [replace(t, candidates=30) for t in out if t.mode == "hybrid" and t.fusion in ("convex", "dbsf")]
    for method in ("convex", "zscore", "dbsf", "adaptive"):
        for w in (0.5, 0.6):
            for long in (0.7, 0.8, 0.9):
                out.append(Trial(fusion=method, bm25_weight=w, dense_weight=round(1 - w, 2), long_bm25=long))
    return out


def score(c: CandidateLists, rank) -> dict[str, float]:
    rows = [query_metrics(c, i, [cid for cid, _ in rank(i)]) for i in range(len(c.queries))]
    return {k: statistics.fmean(r[k] for r in rows) for k in rows[0]}


def prf_rank(c: CandidateLists, mat: np.ndarray, ids: list[str], t: Trial, n: int, beta: float):
    """Rank with the dense list replaced by a Rocchio-expanded query's exact search."""
    row = {cid: j for j, cid in enumerate(ids)}

    def rank(i: int):
        q = c.vectors[i]
        top = [row[cid] for cid, _ in c.dense[i][:n]]
        q2 = q + beta * mat[top].mean(axis=0)
        q2 /= np.linalg.norm(q2)
        sims = mat @ q2
        best = np.argsort(-sims)[:DEPTH]
        dense = [(ids[j], float(sims[j])) for j in best]
        prf = replace(c, dense=[*c.dense[:i], dense, *c.dense[i + 1 :]]) if t.mode != "bm25" else c
        return fused(prf, i, t)

    return rank


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/data")
    ap.add_argument("--datasets", default="scifact,multihop-rag")
    ap.add_argument("--set", action="append", default=[], help="KEY=VALUE setting of the index (chunking.*)")
    ap.add_argument("--prf", action="store_true", help="also the dense pseudo-relevance feedback rows")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/fusion.json")
    args = ap.parse_args()
    overrides = dict(kv.split("=", 1) for kv in args.set)
    settings = load_settings(**overrides)
    loaders = datasets(args.data)
    results: dict[str, dict[str, dict[str, float]]] = {}
    for name in args.datasets.split(","):
        c, mat, ids = candidates(loaders[name](), settings)
        res = results.setdefault(name, {})
        for t in trials():
            res[t.label()] = score(c, lambda i, t=t, c=c: fused(c, i, t))
            print(name, t.label(), {k: round(v, 4) for k, v in res[t.label()].items()}, flush=True)
        if args.prf:
            for base in (Trial(mode="dense"), Trial(fusion="convex", bm25_weight=0.7, dense_weight=0.3)):
                for n, beta in ((3, 0.5), (5, 0.5), (10, 1.0)):
                    label = f"{base.label()} + dense PRF n={n} beta={beta}"
                    res[label] = score(c, prf_rank(c, mat, ids, base, n, beta))
                    print(name, label, {k: round(v, 4) for k, v in res[label].items()}, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"settings": overrides, "results": results}, indent=2))
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
