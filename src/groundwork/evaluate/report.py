"""Printing and saving evaluation results: tables (rich), JSON, and bar charts (matplotlib)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

HEADLINE = [
    "ndcg@10",
    "recall@10",
    "recall@100",
    "mrr@10",
    "map@10",
    "hits@4",
    "hits@10",
    "latency_ms_p50",  # new questions: the query is embedded inside the timed search
    "latency_ms_p95",
    "latency_cached_ms_p50",  # the same question asked again: its vector is cached
    "latency_cached_ms_p95",
]


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.1f}" if abs(v) >= 10 else f"{v:.4f}"
    return "" if v is None else str(v)


def metrics_table(results: Mapping[str, Mapping[str, Any]], metrics: list[str] | None = None, title: str = "") -> Table:
    """One column per configuration, one row per metric present in any of them."""
    names = list(results)
    keys = metrics or [k for k in HEADLINE if any(k in r for r in results.values())]
    keys += [
        k
        for r in results.values()
        for k, v in r.items()
        if isinstance(v, (int, float)) and k not in keys and k != "queries"
    ]
    keys = list(dict.fromkeys(keys))
    table = Table(title=title or None)
    table.add_column("metric")
    for n in names:
        table.add_column(n, justify="right")
    for k in keys:
        table.add_row(k, *(_fmt(results[n].get(k)) for n in names))
    return table


def per_type_table(results: Mapping[str, Mapping[str, Any]], metric: str) -> Table | None:
    types = sorted({t for r in results.values() for t in (r.get("per_type") or {})})
    if not types:
        return None
    table = Table(title=f"{metric} per question type")
    table.add_column("type")
    for n in results:
        table.add_column(n, justify="right")
    for t in types:
        table.add_row(t, *(_fmt((r.get("per_type") or {}).get(t, {}).get(metric)) for r in results.values()))
    return table


def print_results(results: Mapping[str, Mapping[str, Any]], console: Console | None = None, title: str = "") -> None:
    console = console or Console()
    console.print(metrics_table(results, title=title))
    for metric in ("hits@10", "mrr@10"):
        t = per_type_table(results, metric)
        if t is not None and any(metric in v for r in results.values() for v in (r.get("per_type") or {}).values()):
            console.print(t)


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str))


def bar_chart(
    results: Mapping[str, Mapping[str, Any]], path: Path, metrics: list[str] | None = None, title: str = ""
) -> None:
    """Grouped bars: one group per metric, one bar per configuration. Latencies are left out (other unit)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    keys = metrics or [k for k in HEADLINE if not k.startswith("latency") and any(k in r for r in results.values())]
    keys += [
        k for k in ("containment", "rouge_l", "faithfulness") if any(k in r for r in results.values()) and k not in keys
    ]
    names = list(results)
    x = np.arange(len(keys))
    width = 0.8 / max(1, len(names))
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(keys) * max(1, len(names)) / 2), 4.5))
    for i, n in enumerate(names):
        ax.bar(x + i * width - 0.4 + width / 2, [float(results[n].get(k) or 0) for k in keys], width, label=n)
    ax.set_xticks(x, keys, rotation=30, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score")
    ax.set_title(title or "Groundwork evaluation")
    ax.legend(fontsize="small")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
