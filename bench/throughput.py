"""Ingest throughput against the bare embedder, and query throughput per mode, on SciFact.

1. Takes the first N SciFact abstracts, ingests them into a fresh knowledge base (embedding cache off)
   and records chunks/s of the whole pipeline (load, chunk, embed, write, index).
2. Encodes exactly the same chunk texts with the bare embedder (no cache, no pipeline: the model in
   the embedder's own batches, ordered by token count, same batch size) in the same run: chunks/s.
   overhead = 1 - pipeline / bare: the share of ingest time not spent in the encoder (target <= 15%).
3. Runs the SciFact queries against that knowledge base in each mode: queries/s (sequential) and
   latency p50/p95 in ms of new questions (embedding cache off: every search embeds its query).

Usage: python bench/throughput.py [--docs 1000] [--queries 300]   -> bench/results/throughput.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from groundwork import KnowledgeBase, load_settings
from ingest_gpu import chunk_texts

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = ROOT.parent / "shared/data/scifact"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=1000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--data", default=str(SCIFACT))
    ap.add_argument("--out", default=str(ROOT / "bench/results/throughput.json"))
    args = ap.parse_args()

    lines = Path(args.data, "corpus.jsonl").read_text().splitlines()[: args.docs]
    work = Path(tempfile.mkdtemp(prefix="gw-tp-"))
    corpus = work / "corpus.jsonl"
    corpus.write_text("\n".join(lines) + "\n")
    kb = KnowledgeBase(settings=load_settings(kb=work / "kb", **{"embedder.cache": False}))
    kb.embedder.embed(["warm-up"])  # load the model before timing, for both sides alike

    t0 = time.perf_counter()
    report = kb.ingest([corpus], text_field="text", id_field="_id", metadata_fields=["title"])
    pipeline_s = time.perf_counter() - t0
    texts = chunk_texts(kb)
    t0 = time.perf_counter()
    kb.embedder._encode(texts)  # the model in token-ordered batches, as ingest runs it
    bare_s = time.perf_counter() - t0
    n = report.chunks_written
    ingest = {
        "documents": report.added,
        "chunks": n,
        "pipeline_s": pipeline_s,
        "bare_encode_s": bare_s,
        "pipeline_chunks_per_s": n / pipeline_s,
        "bare_chunks_per_s": len(texts) / bare_s,
        "overhead": 1 - (n / pipeline_s) / (len(texts) / bare_s),
    }

    queries = [json.loads(x)["text"] for x in Path(args.data, "queries.jsonl").read_text().splitlines()[: args.queries]]
    modes = {}
    for mode in ("bm25", "dense", "hybrid"):
        lat = []
        t0 = time.perf_counter()
        for q in queries:
            t1 = time.perf_counter()
            kb.search(q, mode=mode, top_k=10)
            lat.append((time.perf_counter() - t1) * 1000)
        total = time.perf_counter() - t0
        modes[mode] = {
            "queries_per_s": len(queries) / total,
            "latency_ms_p50": statistics.median(lat),
            "latency_ms_p95": statistics.quantiles(lat, n=20)[18],
        }

    print(f"ingest: {ingest['documents']} SciFact abstracts, {n} chunks")
    print(
        f"  pipeline {ingest['pipeline_chunks_per_s']:.1f} chunks/s ({pipeline_s:.1f} s), bare encoder "
        f"{ingest['bare_chunks_per_s']:.1f} chunks/s ({bare_s:.1f} s): overhead {100 * ingest['overhead']:.1f}%"
    )
    print(f"{'mode':8} {'queries/s':>10} {'p50 ms':>8} {'p95 ms':>8}   ({len(queries)} queries, {n} chunks)")
    for m, v in modes.items():
        print(f"{m:8} {v['queries_per_s']:10.1f} {v['latency_ms_p50']:8.1f} {v['latency_ms_p95']:8.1f}")
    out = {
        "ingest": ingest,
        "search": modes,
        "machine": f"{platform.machine()} cores={__import__('os').cpu_count()}",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
