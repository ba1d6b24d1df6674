"""The regression gate: re-measure an eval set and fail when a metric falls below its baseline.

A baseline file (JSON) records what was measured, on what, and how much each metric may drop::

    {"eval_set": "docs.jsonl",             # relative to the baseline file
     "mode": null,                           # retrieval mode, null = the configured default
     "tolerance": 0.02,                      # default allowed drop
     "tolerances": {"bertscore_f1": 0.01},   # per-metric overrides
     "metrics": {"ndcg@10": 0.91, "false_abstention": 0.19, ...},
     "also": [{"eval_set": "handbook.jsonl", "metrics": {...}}]}  # optional: more eval sets, same rules

Each eval set in ``also`` is measured on its own and its checks are named "SET: metric" (e.g.
"handbook: containment"); the gate fails when any check of any set fails.

Higher is better for every metric except those in LOWER_IS_BETTER. Latencies are not gated: they
depend on the machine, not the change (they live in benchmarks).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from groundwork.evaluate.datasets import DatasetError

LOWER_IS_BETTER = {"false_abstention"}
GATED = [
    "ndcg@10",
    "recall@10",
    "mrr@10",
    "map@10",
    "hits@4",
    "hits@10",
    "containment",
    "rouge1",
    "rougeL",
    "bertscore_f1",
    "faithfulness",
    "citation_precision",
    "abstention_null",
    "false_abstention",
]


@dataclass
class Check:
    metric: str
    baseline: float
    current: float | None
    tolerance: float

    @property
    def passed(self) -> bool:
        if self.current is None:
            return False
        if self.metric in LOWER_IS_BETTER:
            return self.current <= self.baseline + self.tolerance + 1e-12
        return self.current >= self.baseline - self.tolerance - 1e-12


def read_baseline(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read the baseline ({exc.strerror}); create one with --update") from None
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc.msg})") from None
    if not isinstance(data.get("metrics"), dict) or "eval_set" not in data:
        raise DatasetError(f"{path}: a baseline needs 'eval_set' and 'metrics'")
    return data


def compare(baseline: dict[str, Any], current: dict[str, Any]) -> list[Check]:
    default = float(baseline.get("tolerance", 0.02))
    per = baseline.get("tolerances", {})
    return [
        Check(m, float(v), None if current.get(m) is None else float(current[m]), float(per.get(m, default)))
        for m, v in baseline["metrics"].items()
        if v is not None
    ]


def suites(baseline: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(label, baseline of one eval set) for the main eval set ("" label) and each one in ``also``;
    each inherits ``mode``, ``tolerance`` and ``tolerances`` from the top level. Raises DatasetError
    when an ``also`` entry lacks 'eval_set' or 'metrics'."""
    out = [("", baseline)]
    for extra in baseline.get("also", []):
        if not isinstance(extra, dict) or "eval_set" not in extra or not isinstance(extra.get("metrics"), dict):
            raise DatasetError("each entry of the baseline's 'also' needs 'eval_set' and 'metrics'")
        inherited = {k: baseline[k] for k in ("mode", "tolerance", "tolerances") if k in baseline}
        out.append((Path(extra["eval_set"]).stem, inherited | extra))
    return out


def _metrics(current: dict[str, Any]) -> dict[str, Any]:
    return {m: current[m] for m in GATED if current.get(m) is not None}


def new_baseline(
    eval_set: str,
    mode: str | None,
    current: dict[str, Any],
    tolerance: float = 0.02,
    also: list[tuple[str, dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """A baseline of ``current`` on ``eval_set``, plus ``also``: (eval set, its figures) per extra set."""
    base = {"eval_set": eval_set, "mode": mode, "tolerance": tolerance, "tolerances": {}, "metrics": _metrics(current)}
    if also:
        base["also"] = [{"eval_set": name, "metrics": _metrics(cur)} for name, cur in also]
    return base
