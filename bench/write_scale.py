"""Write cost at growing index size: one 1,000-chunk batch at 10k, 100k, 1M chunks, on LanceDB and PostgreSQL.

Measures the store alone (no model): synthetic chunks with random L2-normalised 384-d float32
vectors and generated text (Zipf-distributed words, 48 a chunk, so the full-text index has real
postings). One store grows through ``--sizes``; at each size:

- ``--batches`` batches of 1,000 new chunks (100 new documents x 10 chunks), each one
  ``Store.replace_documents`` call (the call ingest makes per batch): ms per batch, p50 / max;
- one batch that replaces 100 existing documents (1,000 chunks) with new chunks;
- one ``optimize()`` after those batches (ingest runs it once per run, not per batch): ms.

The fill between sizes writes 20,000-chunk batches through the same call, then ``optimize()`` (full-
text index, ``doc_id`` B-tree, HNSW: ``index.ann_min_rows`` is set to 5,000 so every measured size has
every index; otherwise the first size would write without HNSW and the ratio would show a step, not a
growth). PostgreSQL (a local pgserver, as ``bench/scale.py``) drops its HNSW index before each fill
and rebuilds it after (pgvector builds in bulk much faster than it inserts row by row); the measured
batches insert into the built index.

Usage:
  python bench/write_scale.py --store lance --sizes 10000,100000,1000000 --label after
  python bench/write_scale.py --store postgres --sizes 10000,100000 --label after
  PYTHONPATH=/path/to/other/src python bench/write_scale.py ... --label before   # the same for other code
Writes bench/results/write_scale-<store>-<label>.json and prints size, p50 ms per batch, ratio to the
first size. Timings depend on the machine's load: the JSON records the load average and the cores
other processes kept busy (``bench/machine.py``); compare ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from groundwork import load_settings
from groundwork.types import Chunk
from machine import Load  # bench/machine.py: the script's folder is first on sys.path

ROOT = Path(__file__).resolve().parents[1]
DIM = 384
CHUNKS_PER_DOC = 10
BATCH_CHUNKS = 1_000
FILL_CHUNKS = 20_000
_VOCAB = [f"w{i:x}" for i in range(20_000)]


class Corpus:
    """Documents d0, d1, ... of CHUNKS_PER_DOC chunks each, generated on demand (seeded)."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.next_doc = 0
        self.generation = 0  # bumped by a replacement, so replaced chunks differ from the originals
        ranks = np.arange(1, len(_VOCAB) + 1, dtype=np.float64)
        self.p = (1 / ranks) / (1 / ranks).sum()

    def chunks(self, doc_ids: list[int]) -> list[Chunk]:
        n = len(doc_ids) * CHUNKS_PER_DOC
        vecs = self.rng.standard_normal((n, DIM), dtype=np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        words = self.rng.choice(len(_VOCAB), size=(n, 48), p=self.p)
        out = []
        for i in range(n):
            d = doc_ids[i // CHUNKS_PER_DOC]
            pos = i % CHUNKS_PER_DOC
            text = " ".join(_VOCAB[w] for w in words[i])
            out.append(
                Chunk(
                    chunk_id=f"d{d}#{pos}.{self.generation}",
                    doc_id=f"d{d}",
                    source=f"bench/d{d}.txt",
                    position=pos,
                    text=text,
                    content_hash=f"h{d}.{pos}.{self.generation}",
                    title=f"Document {d}",
                    metadata={"bucket": d % 10},
                    vector=vecs[i],
                )
            )
        return out

    def new(self, n_docs: int) -> tuple[dict[str, str], list[Chunk]]:
        ids = list(range(self.next_doc, self.next_doc + n_docs))
        self.next_doc += n_docs
        return self._batch(ids)

    def replace(self, n_docs: int) -> tuple[dict[str, str], list[Chunk]]:
        """A batch of new chunks for ``n_docs`` documents spread over those written so far."""
        self.generation += 1
        ids = sorted(self.rng.choice(self.next_doc, size=n_docs, replace=False).tolist())
        return self._batch(ids)

    def _batch(self, ids: list[int]) -> tuple[dict[str, str], list[Chunk]]:
        chunks = self.chunks(ids)
        return {f"d{d}": f"doc{d}.{self.generation}" for d in ids}, chunks


def open_store(kind: str, work: Path, server_dsn: str | None, ann_min_rows: int = 5_000):
    settings = load_settings(
        kb=work / "kb",
        **{"embedder.cache": False, "index.ann_min_rows": ann_min_rows},
        **({"store": "postgres", "pg_dsn": server_dsn, "postgres.schema_name": "write_scale"} if server_dsn else {}),
    )
    if kind == "lance":
        from groundwork.index.lance import LanceStore

        return LanceStore(work / "kb", settings.index)
    from groundwork.index.postgres import PgStore

    return PgStore.connect(server_dsn, DIM, settings.index, schema="write_scale")


def fill(store, corpus: Corpus, target: int, kind: str) -> float:
    """Write new documents up to ``target`` chunks, then optimize; returns seconds."""
    t0 = time.perf_counter()
    if kind == "postgres":
        with store.pool.connection() as conn:
            conn.execute("DROP INDEX IF EXISTS chunks_embedding_hnsw")
        store._ann = None
    while store.count_chunks() < target:
        left = target - store.count_chunks()
        hashes, chunks = corpus.new(min(FILL_CHUNKS, left) // CHUNKS_PER_DOC)
        store.replace_documents(hashes, chunks, "bench")
    store.optimize()
    return time.perf_counter() - t0


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def measure(store, corpus: Corpus, batches: int) -> dict:
    docs = BATCH_CHUNKS // CHUNKS_PER_DOC
    append = []
    for _ in range(batches):
        hashes, chunks = corpus.new(docs)
        append.append(timed(lambda h=hashes, c=chunks: store.replace_documents(h, c, "bench")))
    hashes, chunks = corpus.replace(docs)
    replace = timed(lambda: store.replace_documents(hashes, chunks, "bench"))
    optimize = timed(store.optimize)
    return {
        "append_ms": [round(x, 1) for x in append],
        "append_p50_ms": round(statistics.median(append), 1),
        "append_max_ms": round(max(append), 1),
        "replace_ms": round(replace, 1),
        "optimize_after_ms": round(optimize, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", choices=["lance", "postgres"], default="lance")
    ap.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated chunk counts, ascending")
    ap.add_argument("--batches", type=int, default=5, help="1,000-chunk batches of new documents per size")
    ap.add_argument("--label", default="after")
    ap.add_argument(
        "--ann-min-rows",
        type=int,
        default=5_000,
        help="index.ann_min_rows: HNSW from this size on (LanceDB's write path never touches the vector "
        "index, only optimize() does: a large value saves the 1M fill its HNSW build)",
    )
    ap.add_argument("--work", default=None, help="folder for the index (default: a temporary one, removed)")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    work = Path(args.work or tempfile.mkdtemp(prefix="gw-wscale-"))
    work.mkdir(parents=True, exist_ok=True)
    load = Load()
    server = None
    try:
        dsn = None
        if args.store == "postgres":
            from groundwork.index.pg_local import LocalPostgres

            server = LocalPostgres(
                work / "pg",
                settings={
                    "shared_buffers": "1GB",
                    "maintenance_work_mem": "2GB",
                    "max_parallel_maintenance_workers": "2",
                },
            ).start()
            dsn = server.dsn
        store = open_store(args.store, work, dsn, args.ann_min_rows)
        store.check_model("bench-random-384", DIM)
        corpus = Corpus()
        rows = []
        for size in sizes:
            fill_s = fill(store, corpus, size, args.store)
            row = {"size": store.count_chunks(), "fill_s": round(fill_s, 1), **measure(store, corpus, args.batches)}
            row["loadavg"] = [round(x, 2) for x in os.getloadavg()]
            rows.append(row)
            print(json.dumps(row), flush=True)
        base = rows[0]
        for r in rows:
            r["append_ratio"] = round(r["append_p50_ms"] / base["append_p50_ms"], 2)
            r["replace_ratio"] = round(r["replace_ms"] / base["replace_ms"], 2)
        print(f"\n{args.store} ({args.label}): 1,000-chunk batches through Store.replace_documents")
        print("| size | new docs p50 ms | ratio | replace ms | ratio | optimize after ms | fill s |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for r in rows:
            print(
                f"| {r['size']:,} | {r['append_p50_ms']:.0f} | {r['append_ratio']:.2f} | {r['replace_ms']:.0f} "
                f"| {r['replace_ratio']:.2f} | {r['optimize_after_ms']:.0f} | {r['fill_s']:.0f} |"
            )
        out = ROOT / "bench" / "results" / f"write_scale-{args.store}-{args.label}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        disk = sum(f.stat().st_size for f in (work / "kb").rglob("*") if f.is_file()) if args.store == "lance" else None
        out.write_text(
            json.dumps(
                {
                    "store": args.store,
                    "label": args.label,
                    "batch_chunks": BATCH_CHUNKS,
                    "batches_per_size": args.batches,
                    "ann_min_rows": args.ann_min_rows,
                    "rows": rows,
                    "lance_disk_bytes": disk,
                    "machine": {"platform": platform.platform(), **load.report()},
                    "date": datetime.now(UTC).isoformat(timespec="seconds"),
                },
                indent=2,
            )
        )
        print(f"-> {out}")
    finally:
        if server is not None:
            server.stop()
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
