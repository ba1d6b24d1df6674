"""Ingest throughput against the bare encoder on the same device: the GPU path's target.

On a GPU the model is fast enough that parsing, chunking, hashing and writing set the pace; this
measures how close Groundwork's ingest comes to a bare sentence-transformers encode of exactly the same
chunk texts (Chunk.search_text), on the device ``embedder.device = "auto"`` picks (CUDA when torch sees
one, in fp16 there; the CPU otherwise), with the overlap of parsing and encoding on and off.

Interleaved, ``--repeats`` times: (1) bare: ``SentenceTransformer.encode`` of all chunk texts at the
placement's batch size and precision; (2) ``KnowledgeBase.ingest`` of the same corpus into an empty
knowledge base (no embedding cache) with ``ingest.overlap_encode`` on; (3) the same with it off. The
model is loaded and warmed once, before any timing, for all three. Chunks/s and the ratio to bare.

Usage:
  python bench/ingest_gpu.py [--docs 5183] [--repeats 2] [--data ../shared/data/scifact]
      -> bench/results/ingest_gpu.json
  On the GPU machine (whose own PyTorch and sentence-transformers are used): PYTHONPATH=src with the
  missing wheels installed (see docs/benchmarks.md, "GPU path").
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from groundwork import load_settings
from groundwork.kb import KnowledgeBase
from machine import Load

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = ROOT.parent / "shared/data/scifact"
RECORDS = {"text_field": "text", "id_field": "_id", "metadata_fields": ["title"]}


def chunk_texts(kb: KnowledgeBase) -> list[str]:
    """The texts the ingest embedded, rebuilt from the stored rows (Chunk.search_text)."""
    from groundwork.types import Chunk

    rows = kb.store._scan(["chunk_id", "text", "title", "heading"]).to_pylist()
    return [
        Chunk(
            r["chunk_id"],
            "",
            "",
            0,
            r["text"],
            "",
            heading_path=tuple(h for h in (r["heading"] or "").split(" > ") if h),
            title=r["title"] or "",
        ).search_text
        for r in rows
    ]


def fp16_difference(kb: KnowledgeBase, sample: list[str]) -> dict[str, float]:
    """How far the fp16 vectors are from fp32 ones of the same texts: largest absolute difference and
    smallest cosine (both L2-normalised)."""
    import numpy as np
    from sentence_transformers import SentenceTransformer

    half = kb.embedder.model.encode(sample, normalize_embeddings=True, convert_to_numpy=True)
    full = SentenceTransformer(str(kb.embedder.path), device=kb.embedder.placement.device).encode(
        sample, normalize_embeddings=True, convert_to_numpy=True
    )
    half, full = np.asarray(half, np.float32), np.asarray(full, np.float32)
    return {"max_abs": float(np.abs(half - full).max()), "min_cosine": float((half * full).sum(axis=1).min())}


def ingest_s(corpus: Path, work: Path, name: str, overlap: bool) -> tuple[float, int]:
    kb = KnowledgeBase(
        settings=load_settings(kb=work / name, **{"embedder.cache": False, "ingest.overlap_encode": overlap})
    )
    t0 = time.perf_counter()
    report = kb.ingest([corpus], **RECORDS)
    return time.perf_counter() - t0, report.chunks_written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(SCIFACT))
    ap.add_argument("--docs", type=int, default=10**9, help="first N documents of corpus.jsonl (default: all)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "bench/results/ingest_gpu.json"))
    args = ap.parse_args()
    load = Load()
    work = Path(tempfile.mkdtemp(prefix="gw-ingest-gpu-"))
    corpus = work / "corpus.jsonl"
    corpus.write_text("\n".join(Path(args.data, "corpus.jsonl").read_text().splitlines()[: args.docs]) + "\n")

    first = KnowledgeBase(settings=load_settings(kb=work / "probe", **{"embedder.cache": False}))
    placement = first.embedder.placement
    model = first.embedder.model  # loaded once per process: the ingests below share it
    model.encode(["warm-up"] * 64, batch_size=placement.batch_size)
    first.ingest([corpus], **RECORDS)
    texts = chunk_texts(first)
    print(f"{len(texts)} chunks; device {placement.device}, fp16 {placement.fp16}, batch {placement.batch_size}")

    fp16_vs_fp32 = fp16_difference(first, texts[:512]) if placement.fp16 else None
    runs: dict[str, list[float]] = {"bare encode": [], "ingest, overlap": [], "ingest, inline": []}
    for r in range(args.repeats):
        t0 = time.perf_counter()
        model.encode(texts, batch_size=placement.batch_size, normalize_embeddings=True, show_progress_bar=False)
        runs["bare encode"].append(time.perf_counter() - t0)
        for overlap in (True, False) if r % 2 == 0 else (False, True):
            name = "ingest, overlap" if overlap else "ingest, inline"
            seconds, written = ingest_s(corpus, work, f"kb-{r}-{overlap}", overlap)
            assert written == len(texts), (written, len(texts))
            runs[name].append(seconds)
    bare = statistics.median(runs["bare encode"])
    rows = {
        name: {
            "seconds_median": statistics.median(s),
            "seconds": s,
            "chunks_per_s": len(texts) / statistics.median(s),
            "ratio_to_bare": bare / statistics.median(s),
        }
        for name, s in runs.items()
    }
    print(f"{'path':18} {'s (median)':>10} {'chunks/s':>9} {'of bare':>8}")
    for name, row in rows.items():
        print(f"{name:18} {row['seconds_median']:10.1f} {row['chunks_per_s']:9.0f} {row['ratio_to_bare']:8.2f}")
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "chunks": len(texts),
        "documents": min(args.docs, len(corpus.read_text().splitlines())),
        "placement": {"device": placement.device, "fp16": placement.fp16, "batch_size": placement.batch_size},
        "runs": rows,
        "fp16_vs_fp32": fp16_vs_fp32,
        "machine": load.report(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
