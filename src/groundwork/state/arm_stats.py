"""Per-arm figures of an experiment, their significance, and the canary's verdict.

Input: the experiment's answer rows from the audit log (``AuditLog.arm_rows``), one dict per answer
with ``arm``, ``caller``, ``abstained``, ``blocked``, ``flags``, ``guardrails``, ``latency_ms`` (total, ms),
``ratings`` (its feedback, "up"/"down") and, where the audit log records them, ``prompt_tokens``,
``completion_tokens`` and ``cost``.

Figures per arm: answers; keys (distinct callers: the unit of randomisation); abstention rate; helpful rate (share of "up" among rated answers); grounding
rate (share of non-abstained answers that passed the grounding guardrail: the guard records a score
only when it fails, so a pass rate is what every answer has); error rate (the LLM backend failed and
the fallback answered, or an output guardrail blocked the answer); latency p50/p95 (ms, linear
interpolation, numpy's default); tokens and cost (sums, or "not recorded").

Significance, treatment vs control:
- rates: the two-proportion z-test with pooled variance, computed as Pearson's chi-squared test of the
  2x2 table without continuity correction (``scipy.stats.chi2_contingency(..., correction=False)``),
  which is the same test (chi2 = z^2, same p-value; Agresti, *Categorical Data Analysis*, 3rd ed., 3.1.3);
- latency: the Mann-Whitney U test, two-sided (``scipy.stats.mannwhitneyu``; Mann & Whitney 1947).
A p-value is None when either arm lacks data or the test is undefined (no variation at all).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from groundwork.state.experiments import ARMS, CanaryThresholds

NOT_RECORDED = "not recorded"


def _is_error(row: dict[str, Any]) -> bool:
    output_block = any(g.get("stage") == "output" and g.get("action") == "blocked" for g in row.get("guardrails") or [])
    return "fallback" in (row.get("flags") or []) or output_block


def _grounded(row: dict[str, Any]) -> bool:
    return not any(g.get("guard") == "grounding" for g in row.get("guardrails") or [])


def _rate(hits: int, n: int) -> dict[str, Any]:
    return {"count": hits, "of": n, "rate": round(hits / n, 4) if n else None}


def _tokens(rows: list[dict[str, Any]]) -> dict[str, Any] | str:
    recorded = [r for r in rows if r.get("prompt_tokens") is not None or r.get("cost") is not None]
    if not recorded:
        return NOT_RECORDED
    return {
        "answers": len(recorded),
        "prompt_tokens": sum(int(r.get("prompt_tokens") or 0) for r in recorded),
        "completion_tokens": sum(int(r.get("completion_tokens") or 0) for r in recorded),
        "cost": round(sum(float(r.get("cost") or 0) for r in recorded), 6),
    }


def arm_figures(rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """{arm: figures} for both arms (an arm without answers has zeros and None rates)."""
    by_arm: dict[str, list[dict[str, Any]]] = {a: [] for a in ARMS}
    for r in rows:
        if r.get("arm") in by_arm:
            by_arm[r["arm"]].append(r)
    return {arm: _figures(rs) for arm, rs in by_arm.items()}


def _figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    answered = [r for r in rows if not r.get("abstained")]
    ratings = [x for r in rows for x in r.get("ratings") or []]
    latency = [float(r["latency_ms"]) for r in rows if r.get("latency_ms") is not None]
    p50, p95 = np.percentile(latency, [50, 95]).round(1).tolist() if latency else (None, None)
    return {
        "answers": len(rows),
        "keys": len({r.get("caller") for r in rows}),
        "abstention": _rate(sum(1 for r in rows if r.get("abstained")), len(rows)),
        "helpful": _rate(ratings.count("up"), len(ratings)),
        "grounding": _rate(sum(1 for r in answered if _grounded(r)), len(answered)),
        "errors": _rate(sum(1 for r in rows if _is_error(r)), len(rows)),
        "latency_ms": {"p50": p50, "p95": p95},
        "tokens": _tokens(rows),
        "_latencies": latency,
    }


def _two_proportions(a: dict[str, Any], b: dict[str, Any]) -> float | None:
    """p-value of the two-proportion z-test (as chi-squared without correction, see the module doc)."""
    if not a["of"] or not b["of"]:
        return None
    table = [[a["count"], a["of"] - a["count"]], [b["count"], b["of"] - b["count"]]]
    if any(sum(col) == 0 for col in zip(*table)):  # no variation: the test is undefined
        return None
    from scipy.stats import chi2_contingency  # imported on first use: seconds, and most commands never need it

    p = float(chi2_contingency(table, correction=False).pvalue)
    return None if math.isnan(p) else round(p, 6)


def _mann_whitney(a: list[float], b: list[float]) -> float | None:
    if not a or not b:
        return None
    from scipy.stats import mannwhitneyu

    p = float(mannwhitneyu(a, b, alternative="two-sided").pvalue)
    return None if math.isnan(p) else round(p, 6)


def significance(figures: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    """p-values, treatment vs control: each rate (two-proportion z-test) and latency (Mann-Whitney U)."""
    c, t = figures["control"], figures["treatment"]
    out = {name: _two_proportions(c[name], t[name]) for name in ("abstention", "helpful", "grounding", "errors")}
    out["latency_ms"] = _mann_whitney(c["_latencies"], t["_latencies"])
    return out


def public(figures: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The figures without the raw latencies (what status shows and events keep)."""
    return {arm: {k: v for k, v in f.items() if not k.startswith("_")} for arm, f in figures.items()}


def canary_verdict(canary: CanaryThresholds, treatment: dict[str, Any]) -> list[str]:
    """The thresholds the treatment's figures cross, in words; [] when fine or before ``min_answers``."""
    if treatment["answers"] < canary.min_answers:
        return []
    crossed = []
    abst, ground, errors = (treatment[k]["rate"] for k in ("abstention", "grounding", "errors"))
    if canary.max_abstention_rate is not None and abst is not None and abst > canary.max_abstention_rate:
        crossed.append(f"abstention rate {abst:.2f} > {canary.max_abstention_rate:.2f}")
    if canary.min_grounding is not None and ground is not None and ground < canary.min_grounding:
        crossed.append(f"grounding rate {ground:.2f} < {canary.min_grounding:.2f}")
    if canary.max_error_rate is not None and errors is not None and errors > canary.max_error_rate:
        crossed.append(f"error rate {errors:.2f} > {canary.max_error_rate:.2f}")
    return crossed
