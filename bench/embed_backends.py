"""Embedding backends (``embedder.backend``): torch fp32, ONNX Runtime fp32 and ONNX Runtime int8.

On the first ``--chunks`` chunks of SciFact (the configured chunker's search texts, as ingest embeds
them), each backend embeds every chunk through ``SentenceTransformerEmbedder.embed`` (no cache),
``--repeats`` times, interleaved (the order rotates each repeat, so load from other processes falls on
every backend alike). Reported per backend: chunks/s (median over repeats), the ratio to torch fp32
measured in the same run, and the vectors' largest absolute difference and lowest / mean cosine to
torch's. Then ``--queries`` SciFact questions are embedded one at a time (a search's query embedding),
each question by every backend in turn: latency p50 / p95 in ms.

With ``--sdpa``, two more variants run the encoder exported with transformers' SDPA attention, as the
ONNX backends exported it before 2026-12-01 (``onnx-sdpa``, ``onnx-int8-sdpa``), into a temporary
folder: the before/after of the eager export.

The ONNX files are exported on first use into ``embedder.onnx_dir`` (default
~/.cache/groundwork/models); that one-off export is outside the timed part.

Usage:
  python bench/embed_backends.py [--chunks 2000] [--repeats 3] [--queries 200] [--sdpa]
      -> bench/results/embed_backends.json
Skips with a message when ../shared/data/scifact/corpus.jsonl is absent.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from groundwork import load_settings
from groundwork.index import onnx_model
from groundwork.index.embedder import SentenceTransformerEmbedder
from groundwork.ingest.chunking import make_chunker
from groundwork.ingest.loaders import load_file
from groundwork.ingest.records import RecordOptions
from machine import Load

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = ROOT.parent / "shared/data/scifact"
BACKENDS = ("torch", "onnx", "onnx-int8")


def scifact_chunks(corpus: Path, n: int) -> list[str]:
    """The search texts of the first ``n`` chunks of ``corpus`` under the default chunking settings."""
    settings = load_settings()
    chunker = make_chunker(settings.chunking, SentenceTransformerEmbedder(settings.embedder))
    out: list[str] = []
    with corpus.open() as fh:
        for line in fh:
            docs = load_file(Path("corpus.jsonl"), line.encode(), RecordOptions("text", "_id", ("title",)))
            out += [c.search_text for d in docs for c in chunker.chunk(d)]
            if len(out) >= n:
                return out[:n]
    return out


def questions(path: Path, n: int) -> list[str]:
    with path.open() as fh:
        return [json.loads(line)["text"] for line, _ in zip(fh, range(n))]


class SdpaEmbedder(SentenceTransformerEmbedder):
    """The ONNX backend's embedder (same batching, same pooling) over the SDPA export."""

    def __init__(self, int8: bool, folder: Path) -> None:
        super().__init__(load_settings(**{"embedder.backend": "onnx-int8" if int8 else "onnx"}).embedder)
        raw = folder / "sdpa.onnx"
        if not raw.is_file():
            onnx_model._export_fp32(self.path, raw, attention="sdpa")
        graph = raw
        if int8:
            graph = folder / f"sdpa_int8_{onnx_model.cpu_flavour()}.onnx"
            onnx_model._quantize(raw, graph, onnx_model.cpu_flavour())
        self._encoder = onnx_model.OnnxEncoder(graph, self.path, self.max_tokens + 2)

    @property
    def model(self) -> onnx_model.OnnxEncoder:
        return self._encoder


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=SCIFACT)
    ap.add_argument("--chunks", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/embed_backends.json")
    ap.add_argument("--sdpa", action="store_true", help="also time the SDPA exports (the backends before 2026-12-01)")
    args = ap.parse_args()
    corpus = args.data / "corpus.jsonl"
    if not corpus.is_file():
        print(f"skipped: {corpus} not found (BEIR SciFact, see docs/benchmarks.md)")
        return 0
    load = Load()
    texts = scifact_chunks(corpus, args.chunks)
    embedders = {
        b: SentenceTransformerEmbedder(load_settings(**{"embedder.backend": b, "embedder.cache": False}).embedder)
        for b in BACKENDS
    }
    sdpa_dir = tempfile.TemporaryDirectory(prefix="gw-sdpa-")
    if args.sdpa:
        embedders["onnx-sdpa"] = SdpaEmbedder(False, Path(sdpa_dir.name))
        embedders["onnx-int8-sdpa"] = SdpaEmbedder(True, Path(sdpa_dir.name))
    names = tuple(embedders)
    for e in embedders.values():  # load (and export) outside the timings
        e.embed(texts[:32])
    seconds: dict[str, list[float]] = {b: [] for b in names}
    vectors: dict[str, np.ndarray] = {}
    for r in range(args.repeats):
        for b in names[r % len(names) :] + names[: r % len(names)]:
            t = time.perf_counter()
            vectors[b] = embedders[b].embed(texts)
            seconds[b].append(time.perf_counter() - t)
            print(f"repeat {r + 1}: {b:18s} {len(texts) / seconds[b][-1]:7.1f} chunks/s", file=sys.stderr)
    latency: dict[str, list[float]] = {b: [] for b in names}
    for i, q in enumerate(questions(args.data / "queries.jsonl", args.queries)):
        for b in names[i % len(names) :] + names[: i % len(names)]:
            t = time.perf_counter()
            embedders[b].embed([q])
            latency[b].append((time.perf_counter() - t) * 1000)
    rows = {}
    base = len(texts) / statistics.median(seconds["torch"])
    for b in names:
        rate = len(texts) / statistics.median(seconds[b])
        cos = (vectors[b] * vectors["torch"]).sum(axis=1)
        rows[b] = {
            "model_id": embedders[b].model_id,
            "chunks_per_s": round(rate, 1),
            "ratio_to_torch": round(rate / base, 3),
            "seconds": [round(s, 2) for s in seconds[b]],
            "max_abs_diff_to_torch": float(np.abs(vectors[b] - vectors["torch"]).max()),
            "cosine_to_torch_min": round(float(cos.min()), 5),
            "cosine_to_torch_mean": round(float(cos.mean()), 5),
            "query_p50_ms": round(percentile(latency[b], 50), 2),
            "query_p95_ms": round(percentile(latency[b], 95), 2),
        }
    print(f"{len(texts)} SciFact chunks, {args.repeats} repeats; {len(latency['torch'])} single questions")
    print(
        f"{'backend':18s} {'chunks/s':>9s} {'x torch':>8s} {'cos min':>8s} {'cos mean':>9s} {'q p50':>7s} {'q p95':>7s}"
    )
    for b, row in rows.items():
        print(
            f"{b:18s} {row['chunks_per_s']:9.1f} {row['ratio_to_torch']:8.2f} {row['cosine_to_torch_min']:8.4f} "
            f"{row['cosine_to_torch_mean']:9.4f} {row['query_p50_ms']:7.1f} {row['query_p95_ms']:7.1f}"
        )
    machine = load.report()
    print(f"machine: {machine}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "chunks": len(texts),
        "repeats": args.repeats,
        "queries": len(latency["torch"]),
        "backends": rows,
        "machine": machine,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    sdpa_dir.cleanup()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
