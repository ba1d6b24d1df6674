"""Hybrid query latency against the performance targets: new questions through ``KnowledgeBase.search``,
the query embedding included, for several query-encoder settings, interleaved in one run.

Each ``--variant NAME=KB[,key=value...]`` opens the knowledge base folder KB with the given settings
overrides (e.g. ``embedder.backend=onnx-int8``, ``embedder.threads=1``); the embedding cache is off
(every question is embedded; torch's process-wide thread count is set to each variant's
``embedder.threads`` before each of its searches), the retrieval cache on and empty (every question misses it, as a new
question does). An index refuses a query encoder of another model id, so an ``onnx-int8`` variant
needs an index built with ``onnx-int8`` (``groundwork eval compare ... --set embedder.backend=onnx-int8``
builds one in the eval cache).

Questions: ``--queries`` drawn from ``--questions`` (JSON lines with ``text``), 20 others first as
warm-up for every variant, then ``--settle-s`` seconds for the background work the warm-up started
(above the ANN bound, the in-memory row copy: ``index.memory_rows_max_mb``), as on a server that has
been answering for a while. ``--access public`` searches as a caller with no tenant (every search
then carries the access pre-filter, which on an index without tenants keeps every chunk: the cost of
a served request's ACL), ``--access tenant:NAME`` as a caller of tenant NAME. Per question the variants run in turn, their order reversed every other
question. Printed per variant: p50 / p95 / p99 of the whole search, of the query embedding inside it
and of the rest (search minus embedding), in ms; the ratio of p50s to the first variant; and the
machine's load (bench/machine.py), since on a 2-core machine other processes move every figure.

Usage: python bench/query_targets.py --variant torch=KB --variant "int8=KB8,embedder.backend=onnx-int8"
           [--questions FILE] [--queries 200] [--top-k 10] [--access all|public|tenant:NAME]
           [--out bench/results/query_targets.json]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from groundwork import KnowledgeBase, load_settings
from groundwork.types import Access
from hybrid_latency import timed_embedder
from machine import Load

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = ROOT.parent / "shared/data/scifact"


def parse_variant(spec: str) -> tuple[str, Path, dict[str, str]]:
    """'NAME=KB,key=value,...' -> (NAME, KB, overrides). Raises SystemExit on a malformed spec."""
    name, sep, rest = spec.partition("=")
    parts = rest.split(",")
    if not sep or not name or not parts[0]:
        raise SystemExit(f"--variant {spec!r}: expected NAME=KB[,key=value...]")
    overrides = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
    return name, Path(parts[0]).expanduser(), overrides


def open_variant(path: Path, overrides: dict[str, str]) -> KnowledgeBase:
    if not (path / "meta.json").is_file():
        raise SystemExit(f"{path}: not a knowledge-base folder (build it first, see the docstring)")
    settings = load_settings(kb=path, **{"embedder.cache": False, "audit.enabled": False, **overrides})
    return KnowledgeBase(settings=settings)


def parse_access(spec: str) -> Access | None:
    """'all' -> None (no pre-filter), 'public' -> Access(), 'tenant:NAME' -> Access(NAME)."""
    if spec == "all":
        return None
    if spec == "public":
        return Access()
    kind, _, tenant = spec.partition(":")
    if kind != "tenant" or not tenant:
        raise SystemExit(f"--access {spec!r}: expected all, public or tenant:NAME")
    return Access(tenant)


def pct(xs: list[float], q: int) -> float:
    return round(float(np.percentile(xs, q)), 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", action="append", required=True, help="NAME=KB[,key=value...] (repeat)")
    ap.add_argument("--questions", type=Path, default=SCIFACT / "queries.jsonl")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--top-k", type=int, default=10)
    ap.add_argument(
        "--access",
        default="all",
        help="the caller: all (no access pre-filter), public, or tenant:NAME (see the docstring)",
    )
    ap.add_argument(
        "--settle-s", type=float, default=5.0, help="pause after the warm-up, for background loads (seconds)"
    )
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/query_targets.json")
    args = ap.parse_args()
    access = parse_access(args.access)
    specs = [parse_variant(v) for v in args.variant]
    default_threads = torch.get_num_threads()
    kbs, spans, threads = {}, {}, {}
    for name, path, overrides in specs:
        kbs[name] = open_variant(path, overrides)
        spans[name] = []
        # torch's thread count is one per process: set each variant's own before each of its searches
        threads[name] = int(overrides.get("embedder.threads", default_threads))
        timed_embedder(kbs[name], spans[name])
    texts = [json.loads(x)["text"] for x in args.questions.read_text().splitlines() if x.strip()]
    pick = np.random.default_rng(1).choice(len(texts), size=min(args.queries + 20, len(texts)), replace=False)
    warm, questions = [texts[i] for i in pick[:20]], [texts[i] for i in pick[20:]]
    for q in warm:  # models, tables, thread pools
        for name, kb in kbs.items():
            torch.set_num_threads(threads[name])
            kb.search(q, mode="hybrid", top_k=args.top_k, access=access)
    time.sleep(args.settle_s)  # background work the warm-up started (the row copy above the ANN bound)
    for q in warm[:3]:
        for name, kb in kbs.items():
            torch.set_num_threads(threads[name])
            kb.search(q, mode="hybrid", top_k=args.top_k, access=access)
    names = list(kbs)
    total: dict[str, list[float]] = defaultdict(list)
    embed: dict[str, list[float]] = defaultdict(list)
    load = Load()
    for i, q in enumerate(questions):
        for name in names if i % 2 == 0 else names[::-1]:
            torch.set_num_threads(threads[name])
            before = len(spans[name])
            t0 = time.perf_counter()
            kbs[name].search(q, mode="hybrid", top_k=args.top_k, access=access)
            total[name].append((time.perf_counter() - t0) * 1000)
            embed[name].append(sum(spans[name][before:]))
    machine = load.report()
    results = {}
    first = names[0]
    print(f"{len(questions)} new questions, hybrid, top_k {args.top_k}, embedding included")
    print(
        f"{'variant':28} {'chunks':>8} {'p50':>7} {'p95':>7} {'p99':>7} {'embed p50':>9} {'rest p50':>8} {'rest p95':>8} {'p50 ratio':>9}"
    )
    for name in names:
        t, e = total[name], embed[name]
        rest = [a - b for a, b in zip(t, e)]
        results[name] = {
            "kb": str(kbs[name].path),
            "overrides": dict(next(o for n, _, o in specs if n == name)),
            "model_id": kbs[name].embedder.model_id,
            "chunks": kbs[name].count_chunks(),
            "p50_ms": pct(t, 50),
            "p95_ms": pct(t, 95),
            "p99_ms": pct(t, 99),
            "embed_p50_ms": pct(e, 50),
            "embed_p95_ms": pct(e, 95),
            "rest_p50_ms": pct(rest, 50),
            "rest_p95_ms": pct(rest, 95),
            "rest_p99_ms": pct(rest, 99),
            "p50_ratio_to_first": round(pct(t, 50) / pct(total[first], 50), 3),
        }
        v = results[name]
        print(
            f"{name:28} {v['chunks']:8d} {v['p50_ms']:7.1f} {v['p95_ms']:7.1f} {v['p99_ms']:7.1f} {v['embed_p50_ms']:9.1f}"
            f" {v['rest_p50_ms']:8.1f} {v['rest_p95_ms']:8.1f} {v['p50_ratio_to_first']:9.2f}"
        )
    print(f"machine: {machine}")
    out = {
        "benchmark": "hybrid search of new questions through KnowledgeBase.search, query embedding included",
        "questions": len(questions),
        "top_k": args.top_k,
        "access": args.access,
        "results": results,
        "machine": machine,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
