"""Ingest: embedding batches formed by characters (sentence-transformers' order) or by token count.

The encoder pads every text of a batch to the batch's longest text. sentence-transformers orders a
call's texts by characters; chunks differ in characters per token (numbers, chemical names, plain
prose), so batches of equal characters are not batches of equal tokens. Since this change
``SentenceTransformerEmbedder`` forms the batches by token count, using the chunker's counts
(``Chunk.tokens`` plus the title/heading line) when ingest has them.

Everything on the configured chunker's chunks of a SciFact corpus, grouped as ``Ingestor`` groups them
(``ingest.batch_chunks`` chunks per flush, whole documents):

1. padding (exact, no timing): tokens the encoder computes, real vs padded, for each order, over the
   whole corpus (``--docs``);
2. encode time, interleaved: for each flush group of the first ``--timed-docs`` documents, the same
   texts are encoded both ways (the old call, ``model.encode(texts, batch_size)``, and the new
   ``SentenceTransformerEmbedder._encode(texts, token counts)``), alternating which runs first; sums,
   ratio, and the largest difference between the two vectors of a text;
3. optionally, end to end (``--before-src``): ``groundwork ingest`` of the first ``--e2e-docs``
   documents into an empty knowledge base (so an empty embedding cache), alternating the code in
   ``--before-src`` and this tree, ``--e2e-repeats`` times each; the report's seconds.

Usage:
  python bench/ingest_batches.py [--docs 5183] [--timed-docs 1000] [--repeats 1]
      [--before-src /tmp/gw-before/src --e2e-docs 500 --e2e-repeats 2]     -> bench/results/ingest_batches.json
  (a before tree: git archive <commit> src | tar -x -C /tmp/gw-before)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from groundwork import load_settings
from groundwork.index.embedder import SentenceTransformerEmbedder
from groundwork.ingest.chunking import make_chunker
from groundwork.ingest.loaders import load_file
from groundwork.ingest.records import RecordOptions
from groundwork.ingest.sync import Ingestor
from machine import Load

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = ROOT.parent / "shared/data/scifact"


def flush_groups(
    corpus: Path, docs: int, settings
) -> tuple[SentenceTransformerEmbedder, list[tuple[list[str], list[int]]]]:
    """(search texts, token counts) per ingest flush, as Ingestor forms them for this corpus."""
    embedder = SentenceTransformerEmbedder(settings.embedder.model_copy(update={"cache": False}))
    chunker = make_chunker(settings.chunking, embedder)
    ingestor = Ingestor(None, embedder, chunker, settings.ingest)  # type: ignore[arg-type]
    raw = ("\n".join(corpus.read_text().splitlines()[:docs]) + "\n").encode()
    documents = load_file(Path("corpus.jsonl"), raw, RecordOptions("text", "_id", ("title",)))
    groups, pending = [], []
    for d in documents:
        pending += chunker.chunk(d)
        if len(pending) >= settings.ingest.batch_chunks:
            groups.append(pending)
            pending = []
    if pending:
        groups.append(pending)
    return embedder, [([c.search_text for c in g], ingestor._search_tokens(g)) for g in groups]


def padded(batches: list[list[int]], counts: list[int], cap: int) -> int:
    """Positions the encoder computes: each batch padded to its longest text, [CLS] and [SEP] included."""
    return sum(len(b) * (max(min(counts[i], cap) for i in b) + 2) for b in batches)


def char_batches(texts: list[str], size: int) -> list[list[int]]:
    """sentence-transformers' batches: argsort by minus the character count, then slices."""
    order = np.argsort([-len(t) for t in texts]).tolist()
    return [order[i : i + size] for i in range(0, len(order), size)]


def padding(embedder: SentenceTransformerEmbedder, groups, size: int) -> dict:
    cap = embedder.max_tokens
    real = sum(min(n, cap) + 2 for _, counts in groups for n in counts)
    by_chars = sum(padded(char_batches(t, size), c, cap) for t, c in groups)
    by_tokens = sum(padded(embedder.batches(t, c), c, cap) for t, c in groups)
    t0 = time.perf_counter()
    for texts, _ in groups:  # what counting the search texts again would cost (the chunker's counts are free)
        embedder.batches(texts)
    recount_s = time.perf_counter() - t0
    return {
        "chunks": sum(len(t) for t, _ in groups),
        "flushes": len(groups),
        "real_tokens": real,
        "padded_tokens_by_chars": by_chars,
        "padded_tokens_by_tokens": by_tokens,
        "padding_share_by_chars": 1 - real / by_chars,
        "padding_share_by_tokens": 1 - real / by_tokens,
        "recount_tokens_s": recount_s,
    }


def timed(embedder: SentenceTransformerEmbedder, groups, repeats: int) -> dict:
    model, size = embedder.model, embedder.placement.batch_size
    wall: dict[str, list[float]] = {"before": [], "after": []}
    cpu: dict[str, list[float]] = {"before": [], "after": []}
    max_delta = 0.0
    for r in range(repeats):
        for g, (texts, counts) in enumerate(groups):
            vecs = {}
            for side in ("before", "after") if (g + r) % 2 == 0 else ("after", "before"):
                t0, c0 = time.perf_counter(), time.process_time()
                if side == "before":
                    out = model.encode(
                        texts,
                        batch_size=size,
                        normalize_embeddings=True,
                        convert_to_numpy=True,
                        show_progress_bar=False,
                    )
                else:
                    out = embedder._encode(texts, counts)
                wall[side].append(time.perf_counter() - t0)
                cpu[side].append(time.process_time() - c0)
                vecs[side] = np.asarray(out, np.float32)
            max_delta = max(max_delta, float(np.abs(vecs["before"] - vecs["after"]).max()))
            print(
                f"  flush {g + 1}/{len(groups)} ({len(texts)} chunks): by chars {wall['before'][-1]:.1f} s,"
                f" by tokens {wall['after'][-1]:.1f} s"
            )
    return {
        "chunks": sum(len(t) for t, _ in groups) * repeats,
        "encode_s_by_chars": sum(wall["before"]),
        "encode_s_by_tokens": sum(wall["after"]),
        "ratio_tokens_over_chars": sum(wall["after"]) / sum(wall["before"]),
        "ratio_per_flush_median": statistics.median(a / b for a, b in zip(wall["after"], wall["before"])),
        "cpu_s_by_chars": sum(cpu["before"]),
        "cpu_s_by_tokens": sum(cpu["after"]),
        "cpu_ratio_tokens_over_chars": sum(cpu["after"]) / sum(cpu["before"]),
        "max_abs_vector_difference": max_delta,
    }


def end_to_end(corpus: Path, docs: int, before_src: Path, repeats: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix="gw-ingest-e2e-"))
    sub = work / "corpus.jsonl"
    sub.write_text("\n".join(corpus.read_text().splitlines()[:docs]) + "\n")
    gw = [sys.executable, "-m", "groundwork.cli"]
    runs: dict[str, list[float]] = {"before": [], "after": []}
    cpu: dict[str, list[float]] = {"before": [], "after": []}
    for r in range(repeats):
        for side in ("before", "after") if r % 2 == 0 else ("after", "before"):
            src = before_src if side == "before" else ROOT / "src"
            kb = work / f"kb-{side}-{r}"  # a new folder: an empty index and an empty embedding cache
            env = {**os.environ, "PYTHONPATH": str(src)}
            args = ["--kb", str(kb), "ingest", str(sub), "--text-field", "text", "--id-field", "_id"]
            args += ["--metadata-fields", "title", "--json"]
            c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            out = subprocess.run(gw + args, env=env, capture_output=True, text=True, check=True).stdout
            c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            runs[side].append(json.loads(out)["seconds"])
            cpu[side].append(c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime)
            print(f"  end to end, {side}: {runs[side][-1]:.1f} s")
    return {
        "documents": docs,
        "before_s": runs["before"],
        "after_s": runs["after"],
        "ratio_after_over_before": sum(runs["after"]) / sum(runs["before"]),
        "cpu_before_s": cpu["before"],
        "cpu_after_s": cpu["after"],
        "cpu_ratio_after_over_before": sum(cpu["after"]) / sum(cpu["before"]),
        "before_src": str(before_src),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(SCIFACT))
    ap.add_argument("--docs", type=int, default=10**9, help="documents for the padding count (default: all)")
    ap.add_argument("--timed-docs", type=int, default=1000, help="documents encoded both ways (0: skip)")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--before-src", type=Path, help="the src folder of the code before this change (end to end)")
    ap.add_argument("--e2e-docs", type=int, default=500)
    ap.add_argument("--e2e-repeats", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "bench/results/ingest_batches.json"))
    args = ap.parse_args()
    load = Load()
    settings = load_settings()
    corpus = Path(args.data, "corpus.jsonl")
    embedder, groups = flush_groups(corpus, args.docs, settings)
    size = embedder.placement.batch_size
    result: dict = {"padding": padding(embedder, groups, size)}
    p = result["padding"]
    print(f"{p['chunks']} chunks in {p['flushes']} flushes, batches of {size}")
    print(f"{'order':8} {'padded tokens':>14} {'real tokens':>12} {'padding':>8}")
    for order in ("chars", "tokens"):
        tot = p[f"padded_tokens_by_{order}"]
        print(f"{order:8} {tot:14,d} {p['real_tokens']:12,d} {100 * p[f'padding_share_by_{order}']:7.1f}%")
    print(f"counting the search texts' tokens again would take {p['recount_tokens_s']:.1f} s")
    if args.timed_docs:
        _, timed_groups = flush_groups(corpus, args.timed_docs, settings)
        embedder.model.encode(["warm-up"])
        result["encode"] = e = timed(embedder, timed_groups, args.repeats)
        print(
            f"encode {e['chunks']} chunks: by chars {e['encode_s_by_chars']:.1f} s, by tokens {e['encode_s_by_tokens']:.1f} s,"
            f" ratio {e['ratio_tokens_over_chars']:.3f} (median per flush {e['ratio_per_flush_median']:.3f},"
            f" CPU time {e['cpu_ratio_tokens_over_chars']:.3f});"
            f" max |vector difference| {e['max_abs_vector_difference']:.2e}"
        )
    if args.before_src:
        result["end_to_end"] = x = end_to_end(corpus, args.e2e_docs, args.before_src, args.e2e_repeats)
        print(f"end to end, {x['documents']} documents: ratio after/before {x['ratio_after_over_before']:.3f}")
    result["machine"] = load.report()
    result["date"] = datetime.now(UTC).isoformat(timespec="seconds")
    print(f"machine: {result['machine']}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
