"""Drift monitoring: is the live service still as good as it was, and are its questions still the ones
it was measured on? One run (``groundwork monitor run``, or ``monitor.interval_s`` inside ``serve``):

1. **Eval on the live index.** The gold eval set (``monitor.eval_set``) plus every resolved review
   (``groundwork.evaluate.reviewed``) is searched against the live knowledge base, as
   ``groundwork eval retrieval`` does (nDCG@10, recall@10, MRR@10, hits@10), and compared with the
   baseline run: a metric more than ``monitor.eval_drop`` below it is a regression.
2. **Traffic drift,** from the audit records of recent answers: the newest ``monitor.window`` answers
   against the ``monitor.reference`` answers before them (the reference window), compared on
   - the top-1 retrieval score: population stability index (PSI) over ten quantile bins of the
     reference (Siddiqi 2006, *Credit Risk Scorecards*, ch. 8; Yurdakul 2018, "Statistical properties
     of the population stability index"), and the two-sample Kolmogorov–Smirnov test
     (``scipy.stats.ks_2samp``, https://docs.scipy.org/doc/scipy/reference/generated/scipy.stats.ks_2samp.html);
   - the query embeddings: the PSI of each of the 8 numbers of ``query_summary``, averaged;
   - the abstention rate.
   A PSI above ``monitor.psi_alert`` (0.2 by default: the usual "significant shift" line is 0.25,
   "some shift" 0.1) plus its sampling noise counts as drift. The noise: between two samples of one
   distribution, PSI is about (B - 1)(1/n + 1/m) for B bins and n, m values (it approaches a
   chi-square with B - 1 degrees of freedom scaled by 1/n + 1/m; Yurdakul 2018), 0.036 for two windows
   of 500 but 1.5 for two of 12, so small windows need a larger shift to count.

Scores of different retrieval modes (BM25, dense, RRF) are on different scales: a change of the mode
mix shows as score drift, which it is. Fewer than 10 records on either side: no traffic figures.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from groundwork.config import MonitorSettings
from groundwork.evaluate.datasets import LIVE, EvalDataset, load_eval_set
from groundwork.evaluate.retrieval import evaluate_retrieval
from groundwork.evaluate.reviewed import reviewed_dataset
from groundwork.kb import KnowledgeBase

EVAL_METRICS = ("ndcg@10", "recall@10", "mrr@10", "hits@10")
BINS = 10
MIN_RECORDS = 10
_EPS = 1e-4  # an empty bin's share, so that PSI stays finite


def psi(reference: np.ndarray, current: np.ndarray, bins: int = BINS) -> float:
    """Population stability index of ``current`` against ``reference`` (1-d samples):
    sum over bins of (c - r) * ln(c / r), with bins at the reference's quantiles and empty bins at
    a share of 1e-4. 0 = same distribution; > 0.25 is the usual line for a significant shift."""
    edges = _edges(reference, bins)
    r = np.histogram(reference, edges)[0] / max(len(reference), 1)
    c = np.histogram(current, edges)[0] / max(len(current), 1)
    r, c = np.clip(r, _EPS, None), np.clip(c, _EPS, None)
    return float(np.sum((c - r) * np.log(c / r)))


def _edges(reference: np.ndarray, bins: int) -> np.ndarray:
    inner = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    return np.concatenate(([-np.inf], inner, [np.inf]))


def psi_noise(n: int, m: int, bins: int = BINS) -> float:
    """Expected PSI between samples of ``n`` and ``m`` values of one distribution: (bins - 1)(1/n + 1/m)."""
    return (bins - 1) * (1 / n + 1 / m)


def histogram(reference: np.ndarray, current: np.ndarray, bins: int = BINS) -> dict[str, list[float]]:
    """Shares of both samples in ``bins`` equal-width bins over their joint range, for the Health page."""
    lo, hi = float(min(reference.min(), current.min())), float(max(reference.max(), current.max()))
    edges = np.linspace(lo, hi if hi > lo else lo + 1e-6, bins + 1)
    share = lambda x: (np.histogram(x, edges)[0] / len(x)).round(4).tolist()  # noqa: E731
    return {"edges": edges.round(6).tolist(), "reference": share(reference), "current": share(current)}


def traffic_drift(records: list[dict[str, Any]], window: int, reference: int) -> dict[str, Any]:
    """Drift figures of audit ``records`` (newest first): the newest ``window`` against the next
    ``reference``. Returns {current_n, reference_n, abstention_rate, abstention_rate_reference, and when
    both sides have at least 10 scores: top1_psi, top1_psi_noise, top1_ks_statistic, top1_ks_pvalue,
    histogram; when both have 10 query summaries: embedding_psi, embedding_psi_noise}."""
    from scipy.stats import ks_2samp

    cur, ref = records[:window], records[window : window + reference]
    out: dict[str, Any] = {"current_n": len(cur), "reference_n": len(ref)}
    for name, part in (("abstention_rate", cur), ("abstention_rate_reference", ref)):
        out[name] = round(sum(bool(r.get("abstained")) for r in part) / len(part), 4) if part else None
    c, r = _scores(cur), _scores(ref)
    if len(c) >= MIN_RECORDS and len(r) >= MIN_RECORDS:
        ks = ks_2samp(r, c)
        out |= {"top1_psi": round(psi(r, c), 4), "top1_psi_noise": round(psi_noise(len(r), len(c)), 4)}
        out |= {"top1_ks_statistic": round(float(ks.statistic), 4)}
        out |= {"top1_ks_pvalue": float(ks.pvalue), "histogram": histogram(r, c)}
    ce, re_ = _summaries(cur), _summaries(ref)
    if len(ce) >= MIN_RECORDS and len(re_) >= MIN_RECORDS:
        out["embedding_psi"] = round(float(np.mean([psi(re_[:, i], ce[:, i]) for i in range(re_.shape[1])])), 4)
        out["embedding_psi_noise"] = round(psi_noise(len(re_), len(ce)), 4)
    return out


def _scores(records: list[dict[str, Any]]) -> np.ndarray:
    """Top-1 scores: the record's ``top1_score``, or (records written before it) its first retrieved chunk's."""
    vals = [r.get("top1_score", (r.get("retrieved") or [{}])[0].get("score")) for r in records]
    return np.array([v for v in vals if isinstance(v, (int, float))], dtype=np.float64)


def _summaries(records: list[dict[str, Any]]) -> np.ndarray:
    rows = [r["query_summary"] for r in records if isinstance(r.get("query_summary"), list)]
    width = max((len(x) for x in rows), default=0)
    kept = [x for x in rows if len(x) == width]  # a summary of another model's width is left out
    return np.array(kept, dtype=np.float64).reshape(len(kept), width)


def monitored_dataset(kb: KnowledgeBase, settings: MonitorSettings) -> EvalDataset:
    """The gold eval set (``monitor.eval_set``; its sources must be document ids of the live index:
    the same files ingested, or a live set) plus every resolved review, as one live set. Raises
    DatasetError for an unreadable eval set."""
    queries = list(reviewed_dataset(kb.reviews).queries)
    if settings.eval_set is not None:
        queries = load_eval_set(settings.eval_set).queries + queries
    return EvalDataset("monitor", [], None, queries, LIVE)


def run_monitor(kb: KnowledgeBase, settings: MonitorSettings, baseline: bool = False) -> dict[str, Any]:
    """One monitor run on ``kb`` (the live knowledge base), stored in ``kb.components.monitor`` and
    returned: {eval: {questions, metrics} | None, baseline_eval, eval_regressions, traffic, drift: [what
    drifted], alert: bool, run_id, created_at, baseline}. ``baseline``: store this run as the new
    baseline (the first run always is). Raises DatasetError / StoreError as evaluation does."""
    store = kb.components.monitor
    dataset = monitored_dataset(kb, settings)
    judged = [q for q in dataset.queries if q.qrels]
    ev = None
    if judged:
        measured = evaluate_retrieval(dataset, kb, top_k=10)
        ev = {"questions": len(judged), "metrics": {m: round(measured[m], 4) for m in EVAL_METRICS if m in measured}}
    base = store.baseline()
    base_eval = (base or {}).get("eval") or {}
    regressions = [
        m
        for m, v in ((ev or {}).get("metrics") or {}).items()
        if m in base_eval.get("metrics", {}) and v < base_eval["metrics"][m] - settings.eval_drop
    ]
    traffic = traffic_drift(kb.audit.list(settings.window + settings.reference), settings.window, settings.reference)
    drift = [
        k
        for k in ("top1_psi", "embedding_psi")
        if k in traffic and traffic[k] > settings.psi_alert + traffic[f"{k}_noise"]
    ]
    run = {
        "eval": ev,
        "baseline_eval": base_eval.get("metrics"),
        "eval_regressions": regressions,
        "traffic": traffic,
        "drift": drift,
        "alert": bool(regressions or drift),
    }
    return store.add(run, baseline=baseline or base is None)
