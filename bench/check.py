"""What consistency checking costs on LanceDB: the row scan every ingest run now makes (the sync's
re-verify), a whole `groundwork check`, and, for scale, `list_documents` (the scan every run
already made), at several index sizes.

Builds each index directly with LanceStore (synthetic chunks of ~300 characters, 8-d vectors: the
scans read only the id, hash and time columns, or text for list_documents, never vectors), with
``--docs-chunks`` chunks per document, then times each operation (best of ``--repeat``).

Usage: python bench/check.py [--sizes 10000,100000] [--repeat 3]
Writes bench/results/check.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from groundwork.config import IndexSettings
from groundwork.index.check import check_store, scan_rows
from groundwork.index.lance import LanceStore
from groundwork.types import Chunk

ROOT = Path(__file__).resolve().parents[1]
DIM = 8


def build(path: Path, n: int, per_doc: int) -> LanceStore:
    store = LanceStore(path, IndexSettings())
    store.check_model("bench", DIM)
    rng = np.random.default_rng(0)
    batch = 20_000
    for start in range(0, n, batch):
        chunks, hashes = [], {}
        for i in range(start, min(n, start + batch)):
            doc = f"/data/docs/file{i // per_doc:07d}.md"
            hashes[doc] = f"{i // per_doc:064x}"
            vec = rng.normal(size=DIM).astype(np.float32)
            text = f"Chunk {i} of document {i // per_doc}: " + "lorem ipsum dolor sit amet " * 10
            chunks.append(Chunk(f"{doc}::{i % per_doc}", doc, doc, i % per_doc, text, f"h{i}", vector=vec))
        store.replace_documents(hashes, chunks, "pipeline")
    store.record_version(n // per_doc, 0, 0, [])
    return store


def best_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return min(times)


def measure(store: LanceStore, n: int, args: argparse.Namespace) -> dict:
    assert check_store(store).ok
    return {
        "chunks": n,
        "documents": n // args.docs_chunks,
        "reverify_scan_ms": round(best_ms(lambda: scan_rows(store.stored_rows()), args.repeat), 1),
        "check_ms": round(best_ms(lambda: check_store(store), args.repeat), 1),
        "list_documents_ms": round(best_ms(store.list_documents, args.repeat), 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000", help="comma-separated chunk counts")
    ap.add_argument("--docs-chunks", type=int, default=10, help="chunks per document")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "bench/results/check.json"))
    args = ap.parse_args()

    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            build(Path(tmp) / "kb", n, args.docs_chunks)
            rows.append(measure(LanceStore(Path(tmp) / "kb"), n, args))  # opened as a new process would
        print(rows[-1], flush=True)
    print(f"\n{'chunks':>8} {'documents':>9} {'re-verify scan ms':>18} {'check ms':>9} {'list_documents ms':>18}")
    for r in rows:
        print(
            f"{r['chunks']:>8} {r['documents']:>9} {r['reverify_scan_ms']:>18} {r['check_ms']:>9} "
            f"{r['list_documents_ms']:>18}"
        )
    out = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "args": vars(args),
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
