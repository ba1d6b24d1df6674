"""Sentence splitting: ``groundwork.text.split_sentences`` (sentencex) against pysbd, on SciFact.

Every SciFact abstract is split by Groundwork's ``split_sentences`` and, when pysbd is installed
(``pip install pysbd==0.3.4``: Groundwork's segmenter before 2026-12-01, no longer a dependency), by
the same function with pysbd's segmenter in sentencex's place (same line unwrapping and inline-code
masking), ``--repeats`` times each, interleaved. Reported: seconds per pass over the corpus (median),
sentences found, and how many abstracts both split into exactly the same sentences.

The structure chunker splits an abstract into sentences only when it is longer than one chunk, so at
ingest the splitter runs on part of the corpus; ``--chunked`` counts those abstracts (title + text
over ``chunking.chunk_tokens`` tokens).

Usage:
  python bench/sentences.py [--repeats 3] [--chunked] -> bench/results/sentences.json
Skips with a message when ../shared/data/scifact/corpus.jsonl is absent.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from groundwork import text as gw_text

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "scifact" / "corpus.jsonl"


def pysbd_split() -> Callable[[str], list[str]] | None:
    """``split_sentences`` with pysbd's English segmenter (clean=False, as Groundwork used it)."""
    try:
        import pysbd
    except ImportError:
        return None
    segmenter = pysbd.Segmenter(language="en", clean=False)

    def split(text: str) -> list[str]:
        out = []
        for unit in gw_text.unwrap_lines(text):
            masked = gw_text._CODE_SPAN.sub(lambda m: m.group(0).translate(gw_text._MASK), unit)
            out.extend(s.strip().translate(gw_text._UNMASK) for s in segmenter.segment(masked) if s.strip())
        return out

    return split


def long_abstracts(docs: list[dict]) -> int:
    """Abstracts the structure chunker splits into sentences (longer than one chunk)."""
    from groundwork import load_settings
    from groundwork.index.embedder import SentenceTransformerEmbedder

    settings = load_settings()
    embedder = SentenceTransformerEmbedder(settings.embedder)
    size = settings.chunking.chunk_tokens
    return sum(embedder.count_tokens(f"{d.get('title', '')}\n\n{d['text']}") > size for d in docs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunked", action="store_true", help="count abstracts longer than one chunk")
    parser.add_argument("--out", type=Path, default=Path("bench/results/sentences.json"))
    args = parser.parse_args()
    if not DATA.is_file():
        print(f"skipped: {DATA} is absent (see ../shared/data/README)")
        return 0
    docs = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    texts = [d["text"] for d in docs]
    splitters = {"sentencex": gw_text.split_sentences}
    if (other := pysbd_split()) is not None:
        splitters["pysbd"] = other
    else:
        print("pysbd is not installed: timing sentencex alone (pip install pysbd==0.3.4 to compare)")
    seconds: dict[str, list[float]] = {name: [] for name in splitters}
    outputs: dict[str, list[list[str]]] = {}
    for _ in range(args.repeats):
        for name, split in splitters.items():
            t = time.perf_counter()
            outputs[name] = [split(x) for x in texts]
            seconds[name].append(time.perf_counter() - t)
    rows = []
    for name in splitters:
        row = {
            "splitter": name,
            "seconds": round(statistics.median(seconds[name]), 3),
            "sentences": sum(map(len, outputs[name])),
        }
        if name != "sentencex":
            row["identical_abstracts"] = sum(a == b for a, b in zip(outputs[name], outputs["sentencex"], strict=True))
            row["speedup_of_sentencex"] = round(row["seconds"] / rows[0]["seconds"], 1)
        rows.append(row)
    print(f"{len(texts)} SciFact abstracts, median of {args.repeats} passes")
    print(f"{'splitter':<10} {'s/pass':>8} {'sentences':>10} {'same as sentencex':>18}")
    for r in rows:
        same = f"{r['identical_abstracts']}/{len(texts)}" if "identical_abstracts" in r else "-"
        print(f"{r['splitter']:<10} {r['seconds']:>8.3f} {r['sentences']:>10} {same:>18}")
    result = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "abstracts": len(texts), "rows": rows}
    if args.chunked:
        result["abstracts_longer_than_one_chunk"] = long_abstracts(docs)
        print(f"abstracts longer than one chunk (split at ingest): {result['abstracts_longer_than_one_chunk']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
