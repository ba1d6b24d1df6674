"""ANN recall@10 of the embedded store's HNSW index against exact search, on real MiniLM vectors.

Copies an existing knowledge base (default: the MultiHop-RAG one, see multihop_search.py), forces the
HNSW index (index.ann_min_rows = 1) through LanceStore.optimize(), and compares the top 10 of every
dev query against exact (numpy) cosine search over the same vectors. Also reports query latency of
flat vs HNSW search in the same run.

Usage: python bench/ann_recall.py --kb /tmp/mh/kb [--queries N] [--ef-search N] [--refine-factor N]
Writes bench/results/ann_recall.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from groundwork.config import EmbedderSettings, IndexSettings
from groundwork.index.embedder import SentenceTransformerEmbedder
from groundwork.index.lance import LanceStore

ROOT = Path(__file__).resolve().parents[1]


def timed_search(store: LanceStore, qvecs: np.ndarray, k: int) -> tuple[list[list[str]], list[float]]:
    ids, lat = [], []
    for q in qvecs:
        t0 = time.perf_counter()
        hits = store.vector_search(q, k)
        lat.append((time.perf_counter() - t0) * 1000)
        ids.append([h.chunk.chunk_id for h in hits])
    return ids, lat


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kb", default="/tmp/mh/kb")
    ap.add_argument("--queries-file", default=str(ROOT.parent / "shared/data/multihop-rag/queries-dev.json"))
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--ef-search", type=int, default=IndexSettings().hnsw_ef_search)
    ap.add_argument("--refine-factor", type=int, default=IndexSettings().refine_factor)
    ap.add_argument("--out", default=str(ROOT / "bench/results/ann_recall.json"))
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="gw-ann-"))
    try:
        shutil.copytree(args.kb, work / "kb")
        flat = LanceStore(work / "kb", IndexSettings())
        table = flat._scan(["chunk_id", "vector"])
        all_ids = table.column("chunk_id").to_pylist()
        matrix = np.stack(table.column("vector").to_numpy(zero_copy_only=False)).astype(np.float32)
        texts = [q["query"] for q in json.loads(Path(args.queries_file).read_text())[: args.queries]]
        qvecs = SentenceTransformerEmbedder(EmbedderSettings(cache=False)).embed(texts)
        exact = [[all_ids[i] for i in np.argsort(-(matrix @ q))[:10]] for q in qvecs]

        flat_ids, flat_lat = timed_search(flat, qvecs, 10)
        t0 = time.perf_counter()
        index_settings = IndexSettings(ann_min_rows=1, hnsw_ef_search=args.ef_search, refine_factor=args.refine_factor)
        ann = LanceStore(work / "kb", index_settings)
        ann.optimize()
        build_s = time.perf_counter() - t0
        assert ann.has_ann_index()
        ann_ids, ann_lat = timed_search(ann, qvecs, 10)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    recall = lambda got: statistics.mean(len(set(g) & set(e)) / 10 for g, e in zip(got, exact))  # noqa: E731
    res = {
        "chunks": len(all_ids),
        "queries": len(texts),
        "hnsw_build_s": build_s,
        "recall@10_flat": recall(flat_ids),
        "recall@10_hnsw": recall(ann_ids),
        "latency_ms_p50_flat": statistics.median(flat_lat),
        "latency_ms_p50_hnsw": statistics.median(ann_lat),
        "settings": index_settings.model_dump(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    print(f"{res['chunks']} chunks, {res['queries']} queries")
    print(f"{'search':8} {'recall@10':>10} {'p50 ms':>8}")
    print(f"{'flat':8} {res['recall@10_flat']:10.3f} {res['latency_ms_p50_flat']:8.2f}")
    print(
        f"{'hnsw':8} {res['recall@10_hnsw']:10.3f} {res['latency_ms_p50_hnsw']:8.2f}   (build {build_s:.1f} s, "
        f"ef_search {args.ef_search}, refine_factor {args.refine_factor})"
    )
    Path(args.out).write_text(json.dumps(res, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
