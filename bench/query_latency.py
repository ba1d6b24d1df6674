"""Hybrid latency of a new question through ``KnowledgeBase.search``, before / after reading only the
kept rows (late materialisation), interleaved in one run, with the query embedding split out.

Index: ``--kb`` (default: the SciFact eval index of today's settings, built like ``groundwork eval``
builds it when missing). Questions: ``--queries`` drawn from ``--questions`` (JSON lines with
``text``; default SciFact's queries), 20 others first as warm-up. Every search is a new question:
the embedding cache is off, so each search embeds its question; the retrieval cache is on (as by
default) and empty for each variant and repeat, so every search misses it as a new question does.

Variants, each run once per question per repeat, their order alternating from question to question:

- ``before``  the path before this change: hybrid reading every candidate's row (text, metadata,
              vector) from both lists (``Retriever.late_rows`` False), each query built through
              ``Table.search`` (which reads the table's schema first): ``MainPathStore`` below, a second
              store object on the same folder
- ``after``   hybrid ranking ids and scores only, then reading the fused ``top_k`` rows; query
              builders made without the schema read
- ``after, 1 torch thread`` (``--one-thread``): ``after`` with the encoder on one intra-op thread
              (``torch.set_num_threads(1)`` around the search), to show what thread contention costs
              the query embedding on a loaded machine

Per variant: p50 / p95 / p99 of the whole search, of the query embedding inside it, and of the rest
(search minus embedding), in ms; the ratio of p50s against ``before`` and the median per-question
ratio. Every ``after`` result is compared with ``before``'s for the same question (chunk ids in
order, scores within 1e-6): the count of identical results is printed.

Usage: python bench/query_latency.py [--kb DIR] [--questions FILE] [--queries 200] [--repeats 1]
           [--top-k 10] [--one-thread] [--out bench/results/query_latency-scifact.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from groundwork import KnowledgeBase, load_settings
from groundwork.evaluate.datasets import load_beir
from groundwork.evaluate.index_cache import index_path, open_index
from groundwork.index.lance import LanceStore
from groundwork.retrieve import SearchPipeline
from groundwork.retrieve.cache import CachedSearchPipeline, retrieval_settings_hash
from groundwork.retrieve.retriever import Retriever
from hybrid_latency import timed_embedder
from machine import Load

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = ROOT.parent / "shared/data/scifact"


def open_kb(kb_path: Path | None) -> KnowledgeBase:
    """The knowledge base to search, embedding cache off (every question is new)."""
    overrides = {"embedder.cache": False, "audit.enabled": False}
    if kb_path is not None:
        return KnowledgeBase(settings=load_settings(kb=kb_path, **overrides))
    dataset = load_beir(SCIFACT / "corpus.jsonl", SCIFACT / "queries.jsonl", SCIFACT / "qrels/train.tsv")
    settings = load_settings(**overrides)
    path = index_path(dataset, settings)
    if not path.is_dir():
        open_index(dataset, settings)  # the eval index, built once
    return KnowledgeBase(settings=load_settings(kb=path, **overrides))


class MainPathStore(LanceStore):
    """LanceStore building its queries as before this change, through ``Table.search``."""

    def _vector_query(self, vector, where, access):
        q = self._chunks.search(np.asarray(vector, dtype=np.float32), vector_column_name="vector")
        q = q.distance_type("cosine")
        if self.has_ann_index():
            q = q.ef(self.settings.hnsw_ef_search)
            if self.settings.refine_factor:
                q = q.refine_factor(self.settings.refine_factor)
        sql = self._where(where, access)
        return q.where(sql, prefilter=True) if sql else q

    def _keyword_query(self, query, where, access):
        q = self._chunks.search(query, query_type="fts", fts_columns="search_text")
        sql = self._where(where, access)
        return q.where(sql, prefilter=True) if sql else q


def variant(base: KnowledgeBase, before: bool) -> KnowledgeBase:
    """A knowledge base on ``base``'s index and loaded model with its own empty retrieval cache."""
    s = base.settings
    store = MainPathStore(base.store.path, s.index) if before else base.store
    retriever = Retriever(store, base.embedder, s.retrieval)
    retriever.late_rows = not before
    plain = SearchPipeline(retriever, None, None, s.rerank.depth)
    pipeline = CachedSearchPipeline(
        plain, store.current_version, retrieval_settings_hash(s), s.cache.max_entries, s.cache.ttl_s
    )
    return KnowledgeBase(settings=s, store=store, embedder=base.embedder, search_pipeline=pipeline)


def pct(xs: list[float], q: int) -> float:
    return round(float(np.percentile(xs, q)), 2)


def same(a, b) -> bool:
    return [h.chunk.chunk_id for h in a] == [h.chunk.chunk_id for h in b] and all(
        abs(x.score - y.score) <= 1e-6 and x.scores.keys() == y.scores.keys() for x, y in zip(a, b)
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kb", type=Path, default=None)
    ap.add_argument("--questions", type=Path, default=SCIFACT / "queries.jsonl")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--top-k", type=int, default=10)
    ap.add_argument("--one-thread", action="store_true")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/query_latency-scifact.json")
    args = ap.parse_args()
    base = open_kb(args.kb)
    texts = [json.loads(x)["text"] for x in args.questions.read_text().splitlines()]
    pick = np.random.default_rng(1).choice(len(texts), size=min(args.queries + 20, len(texts)), replace=False)
    warm, questions = [texts[i] for i in pick[:20]], [texts[i] for i in pick[20:]]
    spans: list[float] = []
    timed_embedder(base, spans)
    names = ["before", "after"] + (["after, 1 torch thread"] if args.one_thread else [])
    threads = torch.get_num_threads()
    total: dict[str, list[float]] = defaultdict(list)
    embed: dict[str, list[float]] = defaultdict(list)
    identical = compared = 0
    load = Load()
    for r in range(args.repeats):
        kbs = {n: variant(base, n == "before") for n in names}
        for q in warm:  # model, tables, indexes, threads
            for k in kbs.values():
                k.search(q, mode="hybrid", top_k=args.top_k)
        for i, q in enumerate(questions):
            hits = {}
            order = names if i % 2 == 0 else names[::-1]
            for name in order:
                torch.set_num_threads(1 if "1 torch thread" in name else threads)
                before = len(spans)
                t0 = time.perf_counter()
                hits[name] = kbs[name].search(q, mode="hybrid", top_k=args.top_k)
                total[name].append((time.perf_counter() - t0) * 1000)
                embed[name].append(sum(spans[before:]))
            torch.set_num_threads(threads)
            compared += 1
            identical += same(hits["before"], hits["after"])
        print(f"repeat {r + 1}/{args.repeats} done", flush=True)
    machine = load.report()
    result = {}
    print(f"{len(questions)} new questions x {args.repeats} repeats, hybrid, top_k {args.top_k}")
    print(f"{base.count_chunks()} chunks; after == before (ids in order, scores within 1e-6): {identical}/{compared}")
    head = f"{'variant':24} {'p50':>7} {'p95':>7} {'p99':>7} {'embed p50':>9} {'rest p50':>8} {'rest p95':>8}"
    print(head + f" {'p50/before':>10} {'per-question':>12}")
    for name in names:
        t, e = total[name], embed[name]
        rest = [a - b for a, b in zip(t, e)]
        paired = statistics.median(a / b for a, b in zip(t, total["before"]))
        rest_before = [a - b for a, b in zip(total["before"], embed["before"])]
        result[name] = {
            "p50_ms": pct(t, 50),
            "p95_ms": pct(t, 95),
            "p99_ms": pct(t, 99),
            "embed_p50_ms": pct(e, 50),
            "embed_p95_ms": pct(e, 95),
            "embed_p99_ms": pct(e, 99),
            "rest_p50_ms": pct(rest, 50),
            "rest_p95_ms": pct(rest, 95),
            "rest_p99_ms": pct(rest, 99),
            "p50_ratio_to_before": round(pct(t, 50) / pct(total["before"], 50), 3),
            "rest_p50_ratio_to_before": round(pct(rest, 50) / pct(rest_before, 50), 3),
            "median_per_question_ratio_to_before": round(paired, 3),
        }
        v = result[name]
        print(
            f"{name:24} {v['p50_ms']:7.1f} {v['p95_ms']:7.1f} {v['p99_ms']:7.1f} {v['embed_p50_ms']:9.1f}"
            f" {v['rest_p50_ms']:8.1f} {v['rest_p95_ms']:8.1f} {v['p50_ratio_to_before']:10.2f} {paired:12.2f}"
        )
    out = {
        "benchmark": "hybrid search of new questions through KnowledgeBase.search, before/after late materialisation",
        "kb": str(base.path),
        "chunks": base.count_chunks(),
        "ann_index": base.store.has_ann_index() if hasattr(base.store, "has_ann_index") else None,
        "questions": len(questions),
        "repeats": args.repeats,
        "top_k": args.top_k,
        "identical_results": f"{identical}/{compared}",
        "torch_threads": threads,
        "results": result,
        "machine": machine,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    print(f"machine: {machine}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
