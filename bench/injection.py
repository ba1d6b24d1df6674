"""Prompt-injection detection (groundwork.guard.injection) on eval/injection_cases.jsonl, and its cost.

1. Calibration: the semantic signal's (threshold, margin) is chosen on the dev half only: the dev
   cases, and every other 200-token chunk of real corpora (docs/ and, when present, MultiHop-RAG's
   news articles), which are taken to hold no injection. Objective: detected dev injections
   - 2 x (dev benign cases flagged + dev corpus chunks flagged); ties: the larger margin, then the
   larger threshold. The test half (cases and chunks) plays no part in the choice.
2. Detection per kind (direct, paraphrased, obfuscated) and false positives on the benign look-alikes
   and on the corpus chunks, for the patterns alone and for patterns + semantic at the configured
   defaults (GuardSettings).
3. Cost: ms per case and per chunk, with and without the semantic signal (uncached embedder), and
   how many units per chunk pass the cue filter and are embedded.

python bench/injection.py          # prints tables, writes bench/results/injection.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from groundwork.config import EmbedderSettings, GuardSettings  # noqa: E402
from groundwork.guard.injection import InjectionDetector, find_injection  # noqa: E402
from groundwork.index.embedder import SentenceTransformerEmbedder  # noqa: E402

KINDS = ("direct", "paraphrased", "obfuscated", "benign")
THRESHOLDS = np.round(np.arange(0.30, 0.701, 0.02), 2)
MARGINS = np.round(np.arange(0.00, 0.301, 0.02), 2)
MULTIHOP = ROOT.parent / "shared" / "data" / "multihop-rag" / "corpus.json"


def detected(pattern: list[bool], units: list[np.ndarray], threshold: float, margin: float) -> list[bool]:
    """Per text: the patterns, or any unit at/above the threshold and the margin."""
    return [
        p or bool(len(u) and ((u[:, 0] >= threshold) & (u[:, 0] - u[:, 1] >= margin)).any())
        for p, u in zip(pattern, units)
    ]


def per_kind(cases: list[dict], hits: list[bool], split: str | None = None) -> dict[str, list[int]]:
    """{kind: [detected, total]} over ``split`` (None: both halves); ``corpus`` for chunks."""
    out = {}
    for kind in (*KINDS, "corpus"):
        idx = [i for i, c in enumerate(cases) if c["kind"] == kind and split in (None, c["split"])]
        out[kind] = [sum(hits[i] for i in idx), len(idx)]
    return out


def calibrate(items: list[dict], pattern: list[bool], units: list[np.ndarray]) -> tuple[float, float, dict]:
    """The (threshold, margin) of the module docstring, chosen on the dev half only."""
    best = None
    for th in THRESHOLDS:
        for mg in MARGINS:
            r = per_kind(items, detected(pattern, units, th, mg), "dev")
            found = sum(r[k][0] for k in ("direct", "paraphrased", "obfuscated"))
            key = (found - 2 * (r["benign"][0] + r["corpus"][0]), mg, th)
            if best is None or key > best[0]:
                best = (key, float(th), float(mg), r)
    return best[1], best[2], best[3]


def corpus_chunks(path: Path, embedder: SentenceTransformerEmbedder, limit: int, tokens: int = 200) -> list[str]:
    """Up to ``limit`` windows of ``tokens`` tokens (the default chunk size) from a folder of Markdown
    files or a MultiHop-RAG-style JSON list of {"body": ...}."""
    if path.is_dir():
        texts = [p.read_text(encoding="utf-8") for p in sorted(path.glob("*.md"))]
    else:
        texts = [d["body"] for d in json.loads(path.read_text(encoding="utf-8"))]
    out: list[str] = []
    for text in texts:
        offsets = embedder.token_offsets(text)
        for i in range(0, len(offsets), tokens):
            window = offsets[i : i + tokens]
            out.append(text[window[0][0] : window[-1][1]])
            if len(out) >= limit:
                return out
    return out


def ms_per_text(fn, texts: list[str]) -> dict[str, float]:
    """Wall-clock and CPU (all threads) milliseconds per text. Other work on a shared machine inflates
    wall time far more than CPU time, so both are kept."""
    wall, cpu = time.perf_counter(), time.process_time()
    for text in texts:
        fn(text)
    n = max(len(texts), 1)
    return {"wall": (time.perf_counter() - wall) * 1000 / n, "cpu": (time.process_time() - cpu) * 1000 / n}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", type=Path, default=ROOT / "eval" / "injection_cases.jsonl")
    ap.add_argument(
        "--corpus",
        type=Path,
        action="append",
        help="folder of .md files or a corpus.json (repeatable); default: docs/ and MultiHop-RAG when present",
    )
    ap.add_argument("--chunks", type=int, default=300, help="chunks taken from each corpus")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "injection.json")
    args = ap.parse_args()
    corpora = args.corpus or [ROOT / "docs", *([MULTIHOP] if MULTIHOP.is_file() else [])]

    cases = [json.loads(line) for line in args.cases.read_text(encoding="utf-8").splitlines() if line.strip()]
    embedder = SentenceTransformerEmbedder(EmbedderSettings(cache=False))
    chunks = [c for path in corpora for c in corpus_chunks(path, embedder, args.chunks)]
    items = cases + [{"kind": "corpus", "split": ("dev", "test")[i % 2], "text": c} for i, c in enumerate(chunks)]
    texts = [it["text"] for it in items]
    defaults = GuardSettings()
    semantic = InjectionDetector(embedder, defaults.injection_threshold, defaults.injection_margin)
    patterns_only = InjectionDetector(embedder, 2.0, 0.0)
    semantic.find("warm up the model and embed the exemplars")

    pattern = [bool(find_injection(t)) for t in texts]
    units = semantic.unit_scores(texts)
    th, mg, dev = calibrate(items, pattern, units)
    configured = detected(pattern, units, defaults.injection_threshold, defaults.injection_margin)
    rows = {
        "patterns": {s or "all": per_kind(items, pattern, s) for s in ("dev", "test", None)},
        "patterns+semantic": {s or "all": per_kind(items, configured, s) for s in ("dev", "test", None)},
    }
    print(f"corpora: {', '.join(str(p) for p in corpora)} ({len(chunks)} chunks of 200 tokens)")
    print(f"calibration on dev: threshold {th:.2f}, margin {mg:.2f}")
    print(f"configured (GuardSettings): threshold {defaults.injection_threshold}, margin {defaults.injection_margin}")
    print(f"\n{'detector':<18} {'split':<5} " + " ".join(f"{k:>12}" for k in (*KINDS, "corpus")))
    for name, by_split in rows.items():
        for split, r in by_split.items():
            cells = " ".join(f"{r[k][0]:>5}/{r[k][1]:<6}" for k in (*KINDS, "corpus"))
            print(f"{name:<18} {split:<5} {cells}")
    missed = [c["id"] for c, hit in zip(cases, configured) if c["kind"] != "benign" and not hit]
    false_pos = [c["id"] for c, hit in zip(cases, configured) if c["kind"] == "benign" and hit]
    flagged_chunks = [t[:160] for it, t, hit in zip(items, texts, configured) if it["kind"] == "corpus" and hit]
    print(f"\nmissed: {', '.join(missed) or 'none'}\nfalse positives: {', '.join(false_pos) or 'none'}")
    for text in flagged_chunks:
        print(f"flagged corpus chunk: {text!r}")

    sample = chunks[:: max(1, len(chunks) // 100)][:100]
    cost = {
        "ms_per_case_patterns": ms_per_text(find_injection, [c["text"] for c in cases]),
        "ms_per_case_semantic": ms_per_text(semantic.find, [c["text"] for c in cases]),
        "ms_per_chunk_patterns": ms_per_text(patterns_only.find, sample),
        "ms_per_chunk_semantic": ms_per_text(semantic.find, sample),
    }
    answers = [sample[i : i + 6] for i in range(0, len(sample) - 5, 6)]  # an answer's context: 6 chunks
    cost["ms_per_answer_context_6_chunks"] = ms_per_text(semantic.find_many, answers)
    embedded = sum(len(u) for u in semantic.unit_scores(sample)) / max(len(sample), 1)
    load = os.getloadavg()
    print(f"\ncost on {len(sample)} corpus chunks and {len(cases)} cases (uncached embedder; load {load[0]:.1f}):")
    print(f"  {'':<32} {'wall ms':>9} {'CPU ms':>9}")
    for key, value in cost.items():
        print(f"  {key:<32} {value['wall']:9.2f} {value['cpu']:9.2f}")
    print(f"  {'units embedded per chunk':<32} {embedded:9.2f}")

    out = {
        "cases": len(cases),
        "corpora": [str(p) for p in corpora],
        "corpus_chunks": len(chunks),
        "calibration": {"threshold": th, "margin": mg, "dev": dev, "grid": [THRESHOLDS.tolist(), MARGINS.tolist()]},
        "configured": {"threshold": defaults.injection_threshold, "margin": defaults.injection_margin},
        "detected": rows,
        "missed": missed,
        "false_positives": false_pos,
        "flagged_corpus_chunks": flagged_chunks,
        "units_embedded_per_chunk": embedded,
        "cost_ms": cost,
        "load_average": load,
        "cpu_count": os.cpu_count(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
