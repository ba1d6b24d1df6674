"""Large-index benchmark: build time, disk, RAM, query latency per mode and filter, ANN recall@10.

Input: the chunk set of bench/scale_data.py (real MiniLM vectors). ``--multiply M`` makes M copies of
every chunk with vectors sampled around the real one (v + N(0, sigma^2 I), re-normalised; text
unchanged, ids suffixed) to reach sizes beyond the real set (1M = 100k x 10).

Per store (``--store lance|postgres``):
- build: chunks written in batches of whole documents through ``Store.replace_documents``, then
  ``optimize()`` (HNSW index + full-text index); seconds for each.
- disk: the LanceDB folder, or ``pg_total_relation_size`` of the chunks table (indexes and TOAST included).
- RAM: peak RSS of this process (LanceDB is in-process; includes the model and the vectors the
  exact search needs); for PostgreSQL also the server's processes' RSS after the queries.
- latency: ``KnowledgeBase.search`` (query embedding included, embedding cache off), top_k=10,
  for dense / bm25 / hybrid, with no filter and with ``bucket = 3`` (10% of the chunks);
  p50 / p99 in ms over ``--queries`` queries after 20 warm-up queries.
- ANN recall@10: the store's vector search against exact numpy search over the same vectors,
  unfiltered and filtered.

Usage:
  python bench/scale.py --data /tmp/scale --store lance [--chunks 100000] [--multiply 1]
  python bench/scale.py --data /tmp/scale --store postgres [--pg-dsn DSN]   (default: a local pgserver)
Writes bench/results/scale-<store>-<n>.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from groundwork import KnowledgeBase, load_settings
from groundwork.config import IndexSettings
from groundwork.filters import parse_filter
from groundwork.types import Access, Chunk

ROOT = Path(__file__).resolve().parents[1]


def load(data: Path, n: int, multiply: int, sigma: float) -> tuple[list[dict], np.ndarray]:
    rows = [json.loads(x) for x in (data / "chunks.jsonl").read_text().splitlines()[:n]]
    vecs = np.load(data / "vectors.npy")[: len(rows)]
    if multiply <= 1:
        return rows, vecs
    rng = np.random.default_rng(0)
    out_rows, out_vecs = [], []
    for m in range(multiply):
        noisy = vecs + rng.normal(0, sigma, vecs.shape).astype(np.float32) if m else vecs
        out_vecs.append(noisy / np.linalg.norm(noisy, axis=1, keepdims=True))
        out_rows += [{**r, "id": f"{r['id']}~{m}", "doc": f"{r['doc']}~{m}"} for r in rows] if m else rows
    return out_rows, np.concatenate(out_vecs).astype(np.float32)


def chunk_of(row: dict, vector: np.ndarray, prefix: str = "") -> Chunk:
    """A chunk of the scale set (a chunks.jsonl row and its vector); ``prefix`` makes other ids."""
    return Chunk(
        chunk_id=prefix + row["id"],
        doc_id=prefix + row["doc"],
        source=row["doc"],
        position=row["position"],
        text=row["text"],
        content_hash=row["id"],
        metadata=row["metadata"],
        vector=vector,
    )


def build(store, rows: list[dict], vecs: np.ndarray, batch: int = 4000) -> tuple[float, float]:
    t0 = time.perf_counter()
    start = 0
    while start < len(rows):
        end = min(start + batch, len(rows))
        while end < len(rows) and rows[end]["doc"] == rows[end - 1]["doc"]:
            end += 1
        chunks = [chunk_of(r, vecs[i]) for i, r in zip(range(start, end), rows[start:end])]
        store.replace_documents({c.doc_id: "h" for c in chunks}, chunks, "bench")
        start = end
    write_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    store.optimize()
    return write_s, time.perf_counter() - t0


def local_postgres(work: Path, maintenance_work_mem: str = "2GB"):
    """A pgserver PostgreSQL with its data in ``work/pg`` (reused when there), tuned for the build
    (``maintenance_work_mem``: the HNSW graph is built in it; 1M chunks of 384-d need ~2-3 GB)."""
    from groundwork.index.pg_local import LocalPostgres

    settings = {
        "shared_buffers": "1GB",
        "maintenance_work_mem": maintenance_work_mem,
        "max_parallel_maintenance_workers": "2",
    }
    return LocalPostgres(work / "pg", settings=settings).start()


def pct(xs: list[float], p: float) -> float:
    return float(np.percentile(np.asarray(xs), p))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="/tmp/scale")
    ap.add_argument("--store", choices=["lance", "postgres"], default="lance")
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--multiply", type=int, default=1)
    ap.add_argument("--sigma", type=float, default=0.01, help="per-dimension noise of the sampled copies")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--pg-dsn", default=None)
    ap.add_argument("--work", default=None, help="folder for the index (default: a temporary one, removed)")
    ap.add_argument("--out", default=None)
    ap.add_argument(
        "--serve-only",
        action="store_true",
        help="open the index already built in --work and only run the queries: peak RSS is then the store's serving RAM",
    )
    ap.add_argument("--build-only", action="store_true", help="build the index in --work, measure nothing")
    args = ap.parse_args()
    if args.serve_only:
        return serve_only(args)

    data = Path(args.data)
    rows, vecs = load(data, args.chunks, args.multiply, args.sigma)
    n = len(rows)
    queries = [json.loads(x)["text"] for x in (data / "queries.jsonl").read_text().splitlines()]
    qvecs_all = np.load(data / "query_vectors.npy")
    pick = np.random.default_rng(1).choice(len(queries), size=min(args.queries + 20, len(queries)), replace=False)
    work = Path(args.work or tempfile.mkdtemp(prefix="gw-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    server = None
    overrides = {"embedder.cache": False, "index.ann_min_rows": 1}
    if args.store == "postgres":
        dsn = args.pg_dsn
        if dsn is None:
            server = local_postgres(work)
            dsn = server.dsn
        overrides |= {"store": "postgres", "pg_dsn": dsn, "postgres.schema_name": f"scale_{n}"}
    kb = KnowledgeBase(settings=load_settings(kb=work / "kb", **overrides))
    kb.store.check_model(kb.embedder.model_id, kb.embedder.dimension)
    if kb.store.count_chunks() != n:
        if kb.store.count_chunks():
            raise SystemExit(f"{kb.store.path} holds another chunk set; use an empty --work or schema")
        write_s, index_s = build(kb.store, rows, vecs)
    else:
        write_s = index_s = float("nan")  # reused an index built by an earlier run
    kb.store.record_version(n, 0, 0, [])
    if args.build_only:
        print(f"built {n} chunks in {work / 'kb'}: write {write_s:.1f} s, indexes {index_s:.1f} s")
        return

    if args.store == "lance":
        disk = sum(f.stat().st_size for f in (work / "kb").rglob("*") if f.is_file())
    else:
        disk = kb.store._query("SELECT pg_total_relation_size('chunks')")[0][0]

    flt_text = "bucket = 3"
    mask = np.array([r["metadata"]["bucket"] == 3 for r in rows])
    latency: dict[str, dict[str, float]] = {}
    for mode in ("dense", "bm25", "hybrid"):
        for flt in (None, flt_text):
            lat = []
            for j, qi in enumerate(pick):
                t0 = time.perf_counter()
                kb.search(queries[qi], mode=mode, top_k=10, filter=flt, access=Access.all())
                if j >= 20:  # warm-up first
                    lat.append((time.perf_counter() - t0) * 1000)
            latency[f"{mode}{' +filter' if flt else ''}"] = {
                "p50_ms": round(pct(lat, 50), 2),
                "p99_ms": round(pct(lat, 99), 2),
            }

    recall = {}
    for label, flt, sub in (
        ("unfiltered", None, np.arange(n)),
        ("filtered", parse_filter(flt_text), np.flatnonzero(mask)),
    ):
        hits_sum = 0
        for qi in pick[20:]:
            q = qvecs_all[qi]
            exact = set(sub[np.argsort(-(vecs[sub] @ q))[:10]].tolist())
            got = {
                i for i in (_index(rows, h.chunk.chunk_id) for h in kb.store.vector_search(q, 10, flt)) if i is not None
            }
            hits_sum += len(exact & got)
        recall[label] = round(hits_sum / (10 * len(pick[20:])), 4)

    server_rss = None
    if args.store == "postgres":
        import psutil

        server_rss = sum(p.memory_info().rss for p in psutil.process_iter(["name"]) if p.info["name"] == "postgres")
    result = {
        "store": args.store,
        "chunks": n,
        "multiply": args.multiply,
        "sigma": args.sigma if args.multiply > 1 else None,
        "build": {"write_s": round(write_s, 1), "index_s": round(index_s, 1)},
        "disk_mb": round(disk / 1e6, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "server_rss_mb": round(server_rss / 1e6, 1) if server_rss else None,
        "latency": latency,
        "ann_recall_at_10": recall,
        "queries": len(pick) - 20,
        "settings": {
            "hnsw_m": IndexSettings().hnsw_m,
            "hnsw_ef_construction": IndexSettings().hnsw_ef_construction,
            "hnsw_ef_search": IndexSettings().hnsw_ef_search,
        },
        "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    out = Path(args.out or ROOT / f"bench/results/scale-{args.store}-{n}.json")
    out.write_text(json.dumps(result, indent=2))
    print(
        f"{args.store} {n} chunks: write {result['build']['write_s']} s, index {result['build']['index_s']} s, "
        f"disk {result['disk_mb']} MB, peak RSS {result['peak_rss_mb']} MB, server RSS {result['server_rss_mb']} MB"
    )
    print(f"{'mode':<16}{'p50 ms':>10}{'p99 ms':>10}")
    for k, v in latency.items():
        print(f"{k:<16}{v['p50_ms']:>10}{v['p99_ms']:>10}")
    print(f"ANN recall@10: {recall}")
    if server:
        server.stop()
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


def serve_only(args: argparse.Namespace) -> None:
    """Peak RSS of a process that opens an existing LanceDB index and runs every query mode."""
    data = Path(args.data)
    queries = [json.loads(x)["text"] for x in (data / "queries.jsonl").read_text().splitlines()][: args.queries]
    kb = KnowledgeBase(
        settings=load_settings(kb=Path(args.work) / "kb", **{"embedder.cache": False, "index.ann_min_rows": 1})
    )
    lat: dict[str, list[float]] = {}
    for mode in ("dense", "bm25", "hybrid"):
        for flt in (None, "bucket = 3"):
            key = f"{mode}{' +filter' if flt else ''}"
            for q in queries:
                t0 = time.perf_counter()
                kb.search(q, mode=mode, top_k=10, filter=flt, access=Access.all())
                lat.setdefault(key, []).append((time.perf_counter() - t0) * 1000)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "chunks": kb.count_chunks(),
        "serving_peak_rss_mb": round(rss, 1),
        "latency": {k: {"p50_ms": round(pct(v, 50), 2), "p99_ms": round(pct(v, 99), 2)} for k, v in lat.items()},
    }
    Path(args.out or ROOT / f"bench/results/scale-lance-serve-{result['chunks']}.json").write_text(
        json.dumps(result, indent=2)
    )
    print(json.dumps(result, indent=2))


_IDS: dict[str, int] = {}


def _index(rows: list[dict], chunk_id: str) -> int | None:
    if not _IDS:
        _IDS.update({r["id"]: i for i, r in enumerate(rows)})
    return _IDS.get(chunk_id)


if __name__ == "__main__":
    main()
