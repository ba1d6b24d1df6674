"""Precision and recall of PII detection (groundwork.guard.pii) on eval/pii_cases.jsonl, per kind.

python bench/pii.py          # prints a table, writes bench/results/pii.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from groundwork.guard.pii import score_cases  # noqa: E402


def main() -> None:
    cases = [json.loads(line) for line in (ROOT / "eval" / "pii_cases.jsonl").read_text().splitlines() if line.strip()]
    out: dict = score_cases(cases)
    print(f"{'kind':<7} {'tp':>4} {'fp':>4} {'fn':>4} {'precision':>9} {'recall':>7}")
    for kind, r in sorted(out.items(), key=lambda kv: (kv[0] == "all", kv[0])):
        print(f"{kind:<7} {r['tp']:>4} {r['fp']:>4} {r['fn']:>4} {r['precision']:>9.3f} {r['recall']:>7.3f}")
    out["cases"] = len(cases)
    out["negative_cases"] = sum(1 for c in cases if not c["pii"])
    dest = ROOT / "bench" / "results" / "pii.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(out, indent=2))
    print(f"wrote {dest}")


if __name__ == "__main__":
    main()
