"""Small writes on a LanceDB index: disk and time of one-file uploads, the way `groundwork serve` ingests them.

1. Builds a ~12.5k-chunk index: SciFact's corpus (``../shared/data/scifact/corpus.jsonl``, 5,183
   abstracts) when present, else generated text of the same shape. Embeddings are cached in
   ``--cache`` so a second run (other code, same data) does not re-embed.
2. Times one 1,000-chunk ``Store.replace_documents`` batch of new documents (an append) and the same
   batch again (a replacement of those documents), each followed by ``optimize()``.
3. ``--writes`` one-file uploads, each ``KnowledgeBase.ingest([], items=[bytes_item(uri, data)],
   sync=False)`` as the server's ingest worker does it (a ~1.5 KB Markdown note, 2-3 chunks): time
   per write (p50 / p95 ms), total time, and where the time went (the store calls, summed).
4. The knowledge-base folder before and after the uploads: allocated bytes (``du -sB1``) and apparent
   bytes (``du -sb``); the growth per uploaded byte.
5. The 1,000-chunk batches of step 2 again, on the grown index.
6. One upload job of ``--job-files`` new notes: one ``KnowledgeBase.ingest`` call with every file,
   as the server's worker runs a job since issue 14 (before it, a job ran one ingest per file, which
   is what step 3 times); its seconds and the folder's growth.

Run it for any code by putting that code first on the path, e.g. the code before a change:
  git worktree add --detach /tmp/gw-before 2a84560
  PYTHONPATH=/tmp/gw-before/src .venv/bin/python bench/small_writes.py --label before
  PYTHONPATH=src .venv/bin/python bench/small_writes.py --label after
Writes bench/results/small_writes-<label>.json.
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
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from groundwork import KnowledgeBase, load_settings
from groundwork.ingest.sources import bytes_item
from groundwork.types import Chunk

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = ROOT.parent / "shared" / "data" / "scifact" / "corpus.jsonl"
WORDS = [
    "cell",
    "protein",
    "gene",
    "expression",
    "tumour",
    "patient",
    "cohort",
    "trial",
    "dose",
    "receptor",
    "signal",
    "pathway",
    "mouse",
    "model",
    "response",
    "risk",
    "infection",
    "vaccine",
    "blood",
    "pressure",
    "brain",
    "neuron",
    "memory",
    "sleep",
    "diet",
    "exercise",
    "insulin",
]


def folder_bytes(path: Path) -> tuple[int, int]:
    """(allocated bytes as `du -sB1` counts them, apparent bytes as `du -sb`)."""
    allocated = apparent = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            st = os.lstat(os.path.join(dirpath, name))
            allocated += st.st_blocks * 512
            apparent += st.st_size
    return allocated, apparent


def generated_corpus(path: Path, docs: int = 5183) -> Path:
    """SciFact-shaped records (title + a ~250-word abstract) when the real corpus is absent."""
    rng = np.random.default_rng(0)
    with path.open("w") as f:
        for i in range(docs):
            text = ". ".join(" ".join(rng.choice(WORDS, 12)) for _ in range(20)) + "."
            f.write(json.dumps({"_id": str(i), "title": f"Study {i}", "text": text}) + "\n")
    return path


def note(i: int) -> bytes:
    """A ~1.5 KB Markdown upload, different for every i."""
    rng = np.random.default_rng(10_000 + i)
    sections = [
        f"## Part {j}\n\n" + ". ".join(" ".join(rng.choice(WORDS, 11)) for _ in range(9)) + "." for j in range(2)
    ]
    return (f"# Upload {i}\n\n" + "\n\n".join(sections) + "\n").encode()


def timed(obj, name: str, totals: dict[str, float]) -> None:
    """Wrap ``obj.name`` so the seconds spent in it add up in ``totals[name]``."""
    inner = getattr(obj, name)

    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            totals[name] += time.perf_counter() - t0

    setattr(obj, name, wrapper)


def batch_cost(kb: KnowledgeBase, tag: str, vectors: np.ndarray) -> dict[str, float]:
    """ms of a 1,000-chunk batch of 200 new documents (append), then of the same documents again
    (replace), each ``replace_documents`` and the ``optimize()`` after it."""
    out: dict[str, float] = {}
    for kind, version in (("new", "v1"), ("replace", "v2")):
        chunks = [
            Chunk(
                chunk_id=f"bench/{tag}/{d}::{p}",
                doc_id=f"bench/{tag}/{d}",
                source=f"bench/{tag}/{d}",
                position=p,
                text=f"{version} batch document {d} part {p} " + " ".join(WORDS[(d + p) % len(WORDS) :]),
                content_hash=f"{version}-{d}-{p}",
                metadata={},
                vector=vectors[d * 5 + p],
            )
            for d in range(200)
            for p in range(5)
        ]
        hashes = {c.doc_id: version for c in chunks}
        t0 = time.perf_counter()
        kb.store.replace_documents(hashes, chunks, "bench")
        t1 = time.perf_counter()
        kb.store.optimize()
        t2 = time.perf_counter()
        out[f"{kind}_write_ms"] = round((t1 - t0) * 1000, 1)
        out[f"{kind}_optimize_ms"] = round((t2 - t1) * 1000, 1)
    return out


def upload_job(kb: KnowledgeBase, kb_path: Path, files: int) -> dict[str, float]:
    """Seconds and folder growth (bytes) of one ingest of ``files`` new notes, as one job runs them."""
    if not files:
        return {}
    items = [bytes_item(f"upload://t/job/f{i}.md", note(100_000 + i)) for i in range(files)]
    before = folder_bytes(kb_path)[0]
    t0 = time.perf_counter()
    report = kb.ingest([], items=items, sync=False)
    seconds = time.perf_counter() - t0
    assert report.added == files, report
    return {
        "files": files,
        "uploaded_bytes": sum(len(note(100_000 + i)) for i in range(files)),
        "seconds": round(seconds, 1),
        "kb_bytes_growth": folder_bytes(kb_path)[0] - before,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--label", required=True, help="names the result file (e.g. before / after)")
    ap.add_argument("--writes", type=int, default=500)
    ap.add_argument("--job-files", type=int, default=500, help="files in the one-job upload of step 6 (0: skip)")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "gw-small-writes-cache")
    ap.add_argument("--keep", type=Path, help="build the knowledge base here and keep it (default: a temp folder)")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="gw-small-writes-"))
    kb_path = args.keep or work / "kb"
    shutil.rmtree(kb_path, ignore_errors=True)
    corpus = SCIFACT if SCIFACT.is_file() else generated_corpus(work / "corpus.jsonl")
    kb = KnowledgeBase(settings=load_settings(kb=kb_path, **{"embedder.cache_dir": str(args.cache)}))

    t0 = time.perf_counter()
    kb.ingest([corpus], text_field="text", id_field="_id", metadata_fields=["title"])
    build_s = time.perf_counter() - t0
    chunks = kb.store.count_chunks()
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(1000, kb.embedder.dimension)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    start = batch_cost(kb, "start", vectors)

    before = folder_bytes(kb_path)
    totals: dict[str, float] = defaultdict(float)
    for name in ("list_documents", "replace_documents", "optimize", "record_version"):
        timed(kb.store, name, totals)
    per_write: list[float] = []
    uploaded = 0
    t_writes = time.perf_counter()
    for i in range(args.writes):
        data = note(i)
        uploaded += len(data)
        t = time.perf_counter()
        report = kb.ingest([], items=[bytes_item(f"upload://t/f{i}.md", data)], sync=False)
        per_write.append((time.perf_counter() - t) * 1000)
        assert report.added == 1, report
    writes_s = time.perf_counter() - t_writes
    after = folder_bytes(kb_path)
    end = batch_cost(kb, "end", vectors)
    job = upload_job(kb, kb_path, args.job_files)

    result = {
        "label": args.label,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared)",
        "corpus": str(corpus.name if corpus == SCIFACT else "generated"),
        "index_chunks": chunks,
        "build_s": round(build_s, 1),
        "writes": args.writes,
        "uploaded_bytes": uploaded,
        "chunks_after": kb.store.count_chunks(),
        "kb_bytes_before": before[0],
        "kb_bytes_after": after[0],
        "kb_apparent_bytes_before": before[1],
        "kb_apparent_bytes_after": after[1],
        "growth_per_uploaded_byte": round((after[0] - before[0]) / uploaded, 1),
        "write_p50_ms": round(statistics.median(per_write), 1),
        "write_p95_ms": round(float(np.percentile(per_write, 95)), 1),
        "writes_total_s": round(writes_s, 1),
        "store_ms_per_write": {k: round(v * 1000 / args.writes, 1) for k, v in totals.items()},
        "batch_1000_start": start,
        "batch_1000_end": end,
        "job": job,
    }
    out = ROOT / "bench" / "results" / f"small_writes-{args.label}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")

    mb = 1e6
    print(f"\nsmall writes ({args.label}): {chunks:,}-chunk index ({result['corpus']}), {args.writes} one-file uploads")
    print(f"{'kb folder before / after (du -sB1)':<44}{before[0] / mb:>10.1f} MB {after[0] / mb:>10.1f} MB")
    print(f"{'growth per uploaded byte':<44}{result['growth_per_uploaded_byte']:>10}")
    print(f"{'write p50 / p95':<44}{result['write_p50_ms']:>10} ms {result['write_p95_ms']:>10} ms")
    print(f"{'writes total':<44}{result['writes_total_s']:>10} s")
    for k, v in result["store_ms_per_write"].items():
        print(f"{'  of which store.' + k + ' per write':<44}{v:>10} ms")
    print(f"{'1,000-chunk batch':<44}{'start':>13}{'end':>14}")
    for k in start:
        print(f"{'  ' + k:<44}{start[k]:>10} ms {end[k]:>10} ms")
    if job:
        print(f"{'one job of ' + str(job['files']) + ' files':<44}{job['seconds']:>10} s")
        print(f"{'  kb folder growth':<44}{job['kb_bytes_growth'] / mb:>10.1f} MB")
    print(f"wrote {out.relative_to(ROOT)}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
