"""Precision and recall of PII detection (groundwork.guard.pii) on eval/pii_cases.jsonl, per kind.

    python bench/pii.py          # prints a table, writes bench/results/pii.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from groundwork.guard.pii import find_pii  # noqa: E402


def main() -> None:
    cases = [json.loads(line) for line in (ROOT / "eval" / "pii_cases.jsonl").read_text().splitlines() if line.strip()]
    per: dict[str, list[int]] = {}
    for case in cases:
        gold = {(p["kind"], p["value"]) for p in case["pii"]}
        got = {(m.kind, m.text) for m in find_pii(case["text"])}
        for kind in {k for k, _ in gold | got}:
            g, f = {x for x in gold if x[0] == kind}, {x for x in got if x[0] == kind}
            row = per.setdefault(kind, [0, 0, 0])
            row[0], row[1], row[2] = row[0] + len(g & f), row[1] + len(f - g), row[2] + len(g - f)
    total = [sum(r[i] for r in per.values()) for i in range(3)]
    out = {}
    print(f"{'kind':<7} {'tp':>4} {'fp':>4} {'fn':>4} {'precision':>9} {'recall':>7}")
    for kind, (tp, fp, fn) in sorted(per.items()) + [("all", total)]:
        p, r = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
        out[kind] = {"tp": tp, "fp": fp, "fn": fn, "precision": p, "recall": r}
        print(f"{kind:<7} {tp:>4} {fp:>4} {fn:>4} {p:>9.3f} {r:>7.3f}")
    out["cases"] = len(cases)
    out["negative_cases"] = sum(1 for c in cases if not c["pii"])
    dest = ROOT / "bench" / "results" / "pii.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(out, indent=2))
    print(f"wrote {dest}")


if __name__ == "__main__":
    main()
