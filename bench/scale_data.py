"""Build the chunk set for the scale benchmark (bench/scale.py): ~100k real MiniLM vectors.

Chunks are 48-word windows with a 16-word stride over the SciFact corpus and the MultiHop-RAG corpus
(../shared/data), so neighbouring chunks overlap the way a fixed-window chunker's do. Each chunk gets
metadata ``corpus`` (scifact | multihop) and ``bucket`` (0..9, from its position) for filtered queries.
Queries are the SciFact queries and the MultiHop-RAG dev queries, embedded by the same model.

Usage: python bench/scale_data.py --out /tmp/scale [--chunks 100000]
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
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
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
    with (out / "chunks.jsonl").open("w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    queries = [json.loads(x)["text"] for x in (DATA / "scifact/queries.jsonl").read_text().splitlines()]
    queries += [q["query"] for q in json.loads((DATA / "multihop-rag/queries-dev.json").read_text())]
    (out / "queries.jsonl").write_text("".join(json.dumps({"text": q}) + "\n" for q in queries))
    model = SentenceTransformerEmbedder(EmbedderSettings(cache=False, batch_size=64))
    np.save(out / "query_vectors.npy", model.embed(queries))
    t0 = time.perf_counter()
    parts = []
    for i in range(0, len(rows), 4096):
        parts.append(model.embed([r["text"] for r in rows[i : i + 4096]]))
        print(f"{i + len(parts[-1])}/{len(rows)} chunks, {time.perf_counter() - t0:.0f} s", flush=True)
    np.save(out / "vectors.npy", np.concatenate(parts).astype(np.float32))
    print(f"{len(rows)} chunks, {len(queries)} queries -> {out}")


if __name__ == "__main__":
    main()
