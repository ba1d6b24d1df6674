"""Repeated questions through a real `groundwork serve` (uvicorn subprocess, HTTP on loopback): latency
of an answer-cache hit against a miss, and the hit ratio.

Set-up: the project's docs/ ingested into a fresh knowledge base (default settings: extractive
generator, hybrid retrieval, answer and retrieval caches on), one API key, one server. The question
mix: ``--requests`` POST /v1/answer calls, one client, back to back; about ``--repeat-share`` of them
(30% by default) repeat a question asked earlier in the run (half of those with other case and
spacing, which the cache key normalises away); the rest are new questions: the docs evaluation set's
questions, then questions built from the docs' section headings. Order is shuffled with ``--seed``.
A request is a hit when its answer names ``cached_from``.

Reports p50 / p95 latency (ms, client side, HTTP included) of hits and of misses, their ratio, and
the hit ratio; how busy the machine was (bench/machine.py) is printed next to the figures.

Usage: python bench/cache.py [--requests 100] [--repeat-share 0.3] [--seed 17]
Writes bench/results/cache.json.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.machine import Load  # noqa: E402
from tests.serve.server import GW, Server, create_key  # noqa: E402

HEADING = re.compile(r"^#{2,3} (.+)$", re.M)


def new_questions() -> list[str]:
    """The docs evaluation questions, then one question per section heading of docs/*.md."""
    evals = [json.loads(line) for line in (ROOT / "eval" / "docs.jsonl").read_text().splitlines()[1:]]
    out = [e["question"] for e in evals]
    for md in sorted((ROOT / "docs").glob("*.md")):
        for h in HEADING.findall(md.read_text(encoding="utf-8")):
            h = re.sub(r"[`*_]", "", h).strip()
            if 3 <= len(h) <= 80:
                out.append(f"What does the documentation say about {h.lower()}?")
    return list(dict.fromkeys(out))


def mix(requests: int, share: float, seed: int) -> list[tuple[str, bool]]:
    """(question, is a repeat) in asking order: ``share`` of them repeat an earlier question."""
    rng = random.Random(seed)
    fresh = new_questions()
    repeats = round(requests * share)
    if requests - repeats > len(fresh):
        raise SystemExit(f"only {len(fresh)} distinct questions: ask for at most {int(len(fresh) / (1 - share))}")
    new = iter(fresh[: requests - repeats])
    slots = [True] * repeats + [False] * (requests - repeats)
    rng.shuffle(slots)
    while slots[0]:  # the first request cannot repeat anything
        slots.append(slots.pop(0))
    asked: list[str] = []
    out = []
    for repeat in slots:
        if repeat and asked:
            q = rng.choice(asked)
            if rng.random() < 0.5:  # another case and spacing: the same normalised question
                q = "  " + q.upper().replace(" ", "  ")
            out.append((q, True))
        else:
            q = next(new)
            asked.append(q)
            out.append((q, False))
    return out


def pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument("--repeat-share", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=17)
    args = ap.parse_args()
    plan = mix(args.requests, args.repeat_share, args.seed)
    with tempfile.TemporaryDirectory(prefix="gw-bench-cache-") as tmp:
        kb = Path(tmp) / "kb"
        out = subprocess.run([GW, "--kb", str(kb), "ingest", str(ROOT / "docs")], capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(out.stderr)
        key = create_key(kb, "bench", "query")
        srv = Server(kb).start()
        load = Load()
        rows = []
        try:
            with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as c:
                c.post("/v1/search", json={"query": "warm-up question"})  # tables and indexes opened
                for q, repeat in plan:
                    t0 = time.perf_counter()
                    r = c.post("/v1/answer", json={"question": q})
                    ms = (time.perf_counter() - t0) * 1000
                    r.raise_for_status()
                    rows.append({"repeat": repeat, "hit": r.json()["cached_from"] is not None, "ms": ms})
        finally:
            srv.stop()
        machine = load.report()
    hits = [r["ms"] for r in rows if r["hit"]]
    misses = [r["ms"] for r in rows if not r["hit"]]
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "requests": len(rows),
        "repeats_asked": sum(r["repeat"] for r in rows),
        "hits": len(hits),
        "hit_ratio": round(len(hits) / len(rows), 3),
        "hit_ms_p50": pct(hits, 50),
        "hit_ms_p95": pct(hits, 95),
        "miss_ms_p50": pct(misses, 50),
        "miss_ms_p95": pct(misses, 95),
        "miss_over_hit_p50": round(statistics.median(misses) / statistics.median(hits), 1) if hits and misses else None,
        "machine": machine,
        "command": " ".join(["python bench/cache.py", *sys.argv[1:]]),
    }
    print(f"{'':8} {'n':>4} {'p50 ms':>8} {'p95 ms':>8}")
    print(f"{'hit':8} {len(hits):>4} {result['hit_ms_p50']:>8} {result['hit_ms_p95']:>8}")
    print(f"{'miss':8} {len(misses):>4} {result['miss_ms_p50']:>8} {result['miss_ms_p95']:>8}")
    print(
        f"hit ratio {result['hit_ratio']} ({result['repeats_asked']} repeats asked); miss/hit p50 x{result['miss_over_hit_p50']}"
    )
    print(f"machine: {machine}")
    path = ROOT / "bench" / "results" / "cache.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
