"""Throughput under concurrency: N concurrent clients against one and against two `groundwork serve`
replicas sharing one PostgreSQL, on loopback.

Set-up: a local PostgreSQL (pgserver's binaries), `groundwork db migrate`, the first ``--docs``
SciFact abstracts ingested with store = postgres, one API key. Each client is a thread with its own
HTTP connection sending POST /v1/search (hybrid, top_k 10, a SciFact query) back to back for
``--seconds``; with two replicas, clients alternate between them. Reports requests/s, p50 and p99
latency (ms) per configuration, measured in the same run. Each run asks questions no replica has seen
(disjoint slices of the SciFact queries), so every search embeds its question; ``repeats`` counts
requests past the end of a run's slice (asked again, their vectors cached).

Usage: python bench/replicas.py [--clients 8] [--seconds 30] [--docs 1000]
Writes bench/results/replicas.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.serve.server import GW, Server  # noqa: E402

SCIFACT = ROOT.parent / "shared/data/scifact"


def load(servers: list[Server], key: str, queries: list[str], clients: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors, repeats = [0], [0]
    lock = threading.Lock()
    stop = time.time() + seconds

    def client(i: int) -> None:
        srv = servers[i % len(servers)]
        with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as c:
            j = i
            while time.time() < stop:
                t0 = time.perf_counter()
                r = c.post("/v1/search", json={"query": queries[j % len(queries)], "top_k": 10, "mode": "hybrid"})
                dt = (time.perf_counter() - t0) * 1000
                with lock:
                    if r.status_code == 200:
                        latencies.append(dt)
                    else:
                        errors[0] += 1
                    repeats[0] += j >= len(queries)
                j += clients

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {
        "replicas": len(servers),
        "clients": clients,
        "requests": len(latencies),
        "errors": errors[0],
        "repeats": repeats[0],
        "rps": round(len(latencies) / wall, 1),
        "p50_ms": round(float(np.percentile(latencies, 50)), 1),
        "p99_ms": round(float(np.percentile(latencies, 99)), 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--docs", type=int, default=1000)
    ap.add_argument("--out", default=str(ROOT / "bench/results/replicas.json"))
    args = ap.parse_args()

    from groundwork.index.pg_local import LocalPostgres

    work = Path(tempfile.mkdtemp(prefix="gw-replicas-"))
    pg = LocalPostgres(work / "pg").start()
    env = {
        "GROUNDWORK_STORE": "postgres",
        "GROUNDWORK_PG_DSN": pg.dsn,
        "GROUNDWORK_SERVE__RATE_BURST": "100000",
        "GROUNDWORK_SERVE__RATE_PER_MINUTE": "6000000",
        "HF_HUB_OFFLINE": "1",
    }
    full = {**os.environ, **env}
    corpus = work / "scifact.jsonl"
    corpus.write_text("\n".join((SCIFACT / "corpus.jsonl").read_text().splitlines()[: args.docs]) + "\n")
    subprocess.run([GW, "--kb", str(work / "a"), "db", "migrate"], env=full, check=True)
    subprocess.run(
        [GW, "--kb", str(work / "a"), "ingest", str(corpus), "--text-field", "text", "--id-field", "_id"],
        env=full,
        check=True,
    )
    out = subprocess.run(
        [GW, "--kb", str(work / "a"), "keys", "create", "--name", "bench", "--scopes", "query", "--json"],
        env=full,
        check=True,
        capture_output=True,
        text=True,
    )
    key = json.loads(out.stdout)["key"]
    queries = [json.loads(x)["text"] for x in (SCIFACT / "queries.jsonl").read_text().splitlines()]
    a = Server(work / "a", env).start()
    results = []
    try:
        load([a], key, queries[:20], 2, 5)  # warm-up
        half = 20 + (len(queries) - 20) // 2  # a disjoint slice of new questions per run
        results.append(load([a], key, queries[20:half], args.clients, args.seconds))
        b = Server(work / "b", env).start()
        try:
            load([b], key, queries[:20], 2, 5)
            results.append(load([a, b], key, queries[half:], args.clients, args.seconds))
        finally:
            b.stop()
    finally:
        a.stop()
        pg.stop()
    report = {
        "results": results,
        "docs": args.docs,
        "seconds": args.seconds,
        "cpus": os.cpu_count(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"{'replicas':>8}{'clients':>8}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'repeats':>8}")
    for r in results:
        print(
            f"{r['replicas']:>8}{r['clients']:>8}{r['rps']:>8}{r['p50_ms']:>9}{r['p99_ms']:>9}{r['errors']:>8}"
            f"{r['repeats']:>8}"
        )


if __name__ == "__main__":
    main()
