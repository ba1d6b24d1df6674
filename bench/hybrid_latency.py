"""What a user waits for: ``KnowledgeBase.search`` latency on new and on repeated questions, and
three ways to schedule hybrid retrieval, interleaved in one run.

Index: SciFact (title + abstract, default chunking), built like ``groundwork eval`` builds it
(``--cache``: seed it with an ``embeddings.sqlite`` so nothing is re-embedded). Questions: the first
``--queries`` SciFact *train* questions with judgments (only train is used for any choice).

Variants, each run once per question per repeat, their order rotated from question to question:

- ``bm25``                        keyword search only (no query vector)
- ``dense``                       new question: the query is embedded (embedding cache off)
- ``hybrid previous``             the scheduling before this change: keyword search in a thread
                                  *while* the query is embedded, then the vector search
- ``hybrid``                      this change: embed, then keyword search in a thread beside the
                                  vector search
- ``hybrid sequential``           embed, vector search, keyword search, one after the other
- ``hybrid, cache on``            this change with the default embedding cache on, the question not
                                  in it (a lookup that misses, the encode, the write); one new empty
                                  cache per repeat
- ``hybrid, cache on, sync FULL`` the same, the cache's SQLite at synchronous=FULL (before this change)
- ``dense cached`` / ``hybrid cached``  the question asked again: its vector is in the cache

Per variant: p50 / p95 of the whole search (ms) and of the query embedding inside it; ratios of p50s
against ``hybrid previous`` measured in the same run, and the median of per-question ratios.

Usage: python bench/hybrid_latency.py [--queries 300] [--repeats 2] [--cache DIR]
       -> bench/results/hybrid_latency.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from groundwork import KnowledgeBase, load_settings
from groundwork.evaluate.datasets import load_beir
from groundwork.evaluate.index_cache import open_index
from groundwork.retrieve import SearchPipeline
from groundwork.retrieve.fusion import fuse, length_weights
from groundwork.retrieve.retriever import _POOL, Retrieval, Retriever
from machine import Load

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = ROOT.parent / "shared/data/scifact"


class PreviousRetriever(Retriever):
    """Hybrid as scheduled before this change: the keyword search starts before the query is embedded."""

    def retrieve(self, query, mode=None, top_k=None, where=None, access=None) -> Retrieval:
        top_k = top_k or self.settings.top_k
        depth = max(self.settings.candidates, top_k)
        keyword = _POOL.submit(self.store.keyword_search, query, depth, where, access)
        vector = self.embedder.embed([query])[0]
        dense = self.store.vector_search(vector, depth, where, access)
        return Retrieval(_fuse(self, keyword.result(), dense, top_k, vector, query))


class SequentialRetriever(Retriever):
    """Hybrid with no thread: embed, vector search, keyword search."""

    def retrieve(self, query, mode=None, top_k=None, where=None, access=None) -> Retrieval:
        top_k = top_k or self.settings.top_k
        depth = max(self.settings.candidates, top_k)
        vector = self.embedder.embed([query])[0]
        dense = self.store.vector_search(vector, depth, where, access)
        keyword = self.store.keyword_search(query, depth, where, access)
        return Retrieval(_fuse(self, keyword, dense, top_k, vector, query))


def _fuse(r: Retriever, keyword, dense, top_k: int, vector, query: str = ""):
    lists = {"bm25": keyword, "dense": dense}
    s = r.settings
    weights = length_weights(
        s.bm25_weight,
        s.dense_weight,
        len(query.split()),
        s.long_query_bm25_weight,
        s.short_query_words,
        s.long_query_words,
    )
    hits = fuse(lists, s.fusion, weights, s.rrf_k)[:top_k]
    for h in hits:  # as Retriever does: part of the work a search does
        if h.chunk.vector is not None:
            h.relevance = round(float(np.dot(vector, h.chunk.vector)), 6)
    return hits


def timed_embedder(kb: KnowledgeBase, sink: list[float]) -> None:
    """Record how long each ``embed`` call of ``kb``'s embedder takes (ms) into ``sink``."""
    emb = kb.embedder
    inner = emb.embed

    def embed(texts, token_counts=None):
        t0 = time.perf_counter()
        try:
            return inner(texts, token_counts)
        finally:
            sink.append((time.perf_counter() - t0) * 1000)

    emb.embed = embed  # type: ignore[method-assign]


def variants(base: KnowledgeBase, work: Path, repeat: int) -> dict[str, tuple[KnowledgeBase, str]]:
    """name -> (knowledge base, mode); every one on the same store and the same loaded model."""
    s = base.settings

    def kb(cache: bool, cache_dir: Path | None = None, retriever: type[Retriever] | None = None) -> KnowledgeBase:
        emb = s.embedder.model_copy(update={"cache": cache, "cache_dir": cache_dir})
        settings = s.model_copy(update={"embedder": emb})
        k = KnowledgeBase(settings=settings, store=base.store)
        if retriever is not None:
            k = KnowledgeBase(
                settings=settings,
                store=base.store,
                embedder=k.embedder,
                search_pipeline=SearchPipeline(retriever(base.store, k.embedder, s.retrieval)),
            )
        return k

    off = kb(False)
    full = kb(True, work / f"full-{repeat}")
    full.embedder.cache._db.execute("PRAGMA synchronous=FULL")  # the cache's setting before this change
    cached = kb(True, work / "cached")
    return {
        "bm25": (off, "bm25"),
        "dense": (off, "dense"),
        "hybrid previous": (kb(False, retriever=PreviousRetriever), "hybrid"),
        "hybrid": (off, "hybrid"),
        "hybrid sequential": (kb(False, retriever=SequentialRetriever), "hybrid"),
        "hybrid, cache on": (kb(True, work / f"new-{repeat}"), "hybrid"),
        "hybrid, cache on, sync FULL": (full, "hybrid"),
        "dense cached": (cached, "dense"),
        "hybrid cached": (cached, "hybrid"),
    }


def pct(xs: list[float], q: int) -> float:
    return float(np.percentile(xs, q))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(SCIFACT))
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--cache", type=Path, default=None, help="eval index cache folder (as `groundwork eval --cache`)")
    ap.add_argument("--out", default=str(ROOT / "bench/results/hybrid_latency.json"))
    args = ap.parse_args()
    data = Path(args.data)
    dataset = load_beir(data / "corpus.jsonl", data / "queries.jsonl", data / "qrels/train.tsv")
    base = open_index(dataset, load_settings(), args.cache)
    questions = [q.question for q in dataset.queries[: args.queries]]
    work = Path(tempfile.mkdtemp(prefix="gw-hybrid-lat-"))
    load = Load()
    total: dict[str, list[float]] = defaultdict(list)
    embed: dict[str, list[float]] = defaultdict(list)
    for r in range(args.repeats):
        runs = variants(base, work, r)
        for k, mode in runs.values():  # warm up: model, tables, indexes, threads
            k.search("warm-up question", mode=mode, top_k=10)
        cached = runs["hybrid cached"][0]
        cached.embedder.embed(questions)  # the repeated-question variants find every vector cached
        spans: dict[int, list[float]] = {}
        for k, _ in runs.values():
            if id(k.embedder) not in spans:
                spans[id(k.embedder)] = []
                timed_embedder(k, spans[id(k.embedder)])
        names = list(runs)
        for i, q in enumerate(questions):
            for j in range(len(names)):
                name = names[(i + j) % len(names)]
                k, mode = runs[name]
                sink = spans[id(k.embedder)]
                before = len(sink)
                t0 = time.perf_counter()
                k.search(q, mode=mode, top_k=10)
                total[name].append((time.perf_counter() - t0) * 1000)
                embed[name].append(sum(sink[before:]))
        print(f"repeat {r + 1}/{args.repeats} done")
    base_name = "hybrid previous"
    result = {}
    print(f"{len(questions)} SciFact train questions x {args.repeats} repeats, top_k 10")
    print(f"{'variant':30} {'p50 ms':>7} {'p95 ms':>7} {'embed p50':>9} {'p50 / previous':>15} {'per-question':>12}")
    for name in runs:
        t = total[name]
        paired = statistics.median(a / b for a, b in zip(t, total[base_name]))
        result[name] = {
            "p50_ms": pct(t, 50),
            "p95_ms": pct(t, 95),
            "embed_p50_ms": pct(embed[name], 50),
            "embed_p95_ms": pct(embed[name], 95),
            "p50_ratio_to_previous": pct(t, 50) / pct(total[base_name], 50),
            "median_per_question_ratio_to_previous": paired,
        }
        v = result[name]
        print(
            f"{name:30} {v['p50_ms']:7.1f} {v['p95_ms']:7.1f} {v['embed_p50_ms']:9.1f}"
            f" {v['p50_ratio_to_previous']:15.2f} {paired:12.2f}"
        )
    import torch

    out = {
        "benchmark": "search latency per variant, SciFact train questions",
        "questions": len(questions),
        "repeats": args.repeats,
        "chunks": base.count_chunks(),
        "torch_threads": torch.get_num_threads(),
        "results": result,
        "machine": load.report(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    print(f"machine: {out['machine']}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
