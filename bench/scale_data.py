"""Build the chunk set for the scale benchmark (bench/scale.py): ~100k real MiniLM vectors.

Chunks are 48-word windows with a 16-word stride over the SciFact corpus and the MultiHop-RAG corpus
(../shared/data), so neighbouring chunks overlap the way a fixed-window chunker's do. Each chunk gets
metadata ``corpus`` (scifact | multihop) and ``bucket`` (0..9, from its position) for filtered queries.
Queries are the SciFact queries and the MultiHop-RAG dev queries, embedded by the same model.

Usage: python bench/scale_data.py --out /tmp/scale [--chunks 100000]
       python bench/scale_data.py --out /tmp/scale-eval --from-index KB [KB ...]
``--from-index`` takes the chunks (search text, vector) of already built knowledge bases instead, e.g.
the SciFact and MultiHop-RAG eval indexes under ~/.cache/groundwork/eval: no chunk is encoded (only
the queries), so a 100k set is ``bench/scale.py --multiply`` of it in minutes instead of ~35.
Writes OUT/chunks.jsonl (id, doc, text, metadata), OUT/vectors.npy ((n, 384) float32, L2-normalised),
OUT/queries.jsonl and OUT/query_vectors.npy. Encoding runs at ~100 chunks/s on 2 cores (~17 min).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from groundwork.config import EmbedderSettings
from groundwork.index.embedder import SentenceTransformerEmbedder

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def windows(words: list[str], size: int = 48, stride: int = 16) -> list[str]:
    if len(words) <= size:
        return [" ".join(words)] if words else []
    return [" ".join(words[i : i + size]) for i in range(0, len(words) - size + stride, stride)]


def corpus_docs() -> list[tuple[str, str, str]]:
    docs = []
    for line in (DATA / "scifact/corpus.jsonl").read_text().splitlines():
        d = json.loads(line)
        docs.append(("scifact", f"scifact/{d['_id']}", f"{d.get('title', '')}. {d['text']}"))
    for i, d in enumerate(json.loads((DATA / "multihop-rag/corpus.json").read_text())):
        docs.append(("multihop", f"multihop/{i}", f"{d['title']}. {d['body']}"))
    return docs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="/tmp/scale")
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument(
        "--from-index", nargs="+", type=Path, default=None, help="knowledge-base folders to take chunks from"
    )
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.from_index:
        return from_index(args.from_index, out, args.chunks)
    rows = []
    for corpus, doc, text in corpus_docs():
        for pos, w in enumerate(windows(text.split())):
            rows.append(
                {
                    "id": f"{doc}::{pos}",
                    "doc": doc,
                    "position": pos,
                    "text": w,
                    "metadata": {"corpus": corpus, "bucket": pos % 10},
                }
            )
    rows = rows[: args.chunks]
    model = write_rows_and_queries(out, rows)
    t0 = time.perf_counter()
    parts = []
    for i in range(0, len(rows), 4096):
        parts.append(model.embed([r["text"] for r in rows[i : i + 4096]]))
        print(f"{i + len(parts[-1])}/{len(rows)} chunks, {time.perf_counter() - t0:.0f} s", flush=True)
    np.save(out / "vectors.npy", np.concatenate(parts).astype(np.float32))
    print(f"{len(rows)} chunks -> {out}")


def write_rows_and_queries(out: Path, rows: list[dict]) -> SentenceTransformerEmbedder:
    """OUT/chunks.jsonl, OUT/queries.jsonl and OUT/query_vectors.npy; returns the loaded model."""
    with (out / "chunks.jsonl").open("w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    queries = [json.loads(x)["text"] for x in (DATA / "scifact/queries.jsonl").read_text().splitlines()]
    queries += [q["query"] for q in json.loads((DATA / "multihop-rag/queries-dev.json").read_text())]
    (out / "queries.jsonl").write_text("".join(json.dumps({"text": q}) + "\n" for q in queries))
    model = SentenceTransformerEmbedder(EmbedderSettings(cache=False, batch_size=64))
    np.save(out / "query_vectors.npy", model.embed(queries))
    return model


def from_index(kbs: list[Path], out: Path, limit: int) -> None:
    """The chunk set from built knowledge bases: their chunks' search text and stored vectors."""
    import lancedb

    rows, vecs = [], []
    for kb in kbs:
        table = lancedb.connect(str(kb / "lancedb")).open_table("chunks")
        t = table.search().select(["chunk_id", "doc_id", "position", "search_text", "vector"]).limit(table.count_rows())
        t = t.to_arrow()
        name = kb.name.split("-")[0]
        for r in t.select(["chunk_id", "doc_id", "position", "search_text"]).to_pylist():
            rows.append(
                {
                    "id": f"{name}/{r['chunk_id']}",
                    "doc": f"{name}/{r['doc_id']}",
                    "position": r["position"],
                    "text": r["search_text"],
                    "metadata": {"corpus": name, "bucket": r["position"] % 10},
                }
            )
        col = t.column("vector").combine_chunks()
        vecs.append(col.flatten().to_numpy().reshape(len(col), -1))
    # scale.py writes whole documents per batch: a document's chunks must be adjacent
    order = sorted(range(len(rows)), key=lambda i: (rows[i]["doc"], rows[i]["position"]))[:limit]
    write_rows_and_queries(out, [rows[i] for i in order])
    np.save(out / "vectors.npy", np.concatenate(vecs)[order].astype(np.float32))
    print(f"{len(order)} chunks from {len(kbs)} knowledge bases -> {out}")


if __name__ == "__main__":
    main()
