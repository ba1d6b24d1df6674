"""``groundwork tune``: choose retrieval settings on the user's own judged questions and report how
they do on questions the choice never saw.

Method: k-fold cross-validation (Stone 1974, "Cross-validatory choice and assessment of statistical
predictions"; Hastie, Tibshirani & Friedman, *The Elements of Statistical Learning* §7.10). The
judged questions are shuffled with ``seed`` and dealt into ``folds`` parts. For each part, the
setting with the best mean ``metric`` on the other parts is chosen and measured on that part; the
default (the settings tune started from) is measured on the same part. The held-out figures are
the means over the parts: an honest estimate of what choosing by tune gains. The setting written is
the one best on all the questions (the same procedure, fitted on everything).

Every setting of one index is scored from candidate lists collected once (evaluate.candidates): the
questions are embedded once and searched once per side, so the search never re-embeds. Index
variants (chunk sizes) are separate indexes of the eval cache; each is searched the same way. A
cross-encoder reranker (``reranker``: a model folder) adds "reranker on" to the best settings found.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from groundwork.evaluate.candidates import CandidateLists, Trial, fused, query_metrics
from groundwork.types import SearchHit

DEFAULT_METRIC = {"multihop-rag": "mrr@10"}  # else nDCG@10 (document-level)


def default_metric(fmt: str) -> str:
    return DEFAULT_METRIC.get(fmt, "ndcg@10")


def grid(depth: int, reranker: bool = False) -> list[Trial]:
    """The settings searched per index: bm25, dense, and hybrid by each fusion method with BM25's
    share of the weight 0.3-0.8 and 30 or ``depth`` candidates per list (RRF with k = 60), and the
    score fusions with BM25's share rising to 0.8 for long questions (retrieval.long_query_bm25_weight)."""
    out = [Trial(mode="bm25"), Trial(mode="dense")]
    for cands in sorted({min(30, depth), depth}):
        for method in ("convex", "zscore", "dbsf", "combmnz", "rrf"):
            for share in (0.3, 0.5, 0.6, 0.7, 0.8):
                out.append(Trial(fusion=method, bm25_weight=share, dense_weight=round(1 - share, 2), candidates=cands))
    for method in ("convex", "zscore", "dbsf"):
        for share in (0.5, 0.6):
            out.append(
                Trial(
                    fusion=method, bm25_weight=share, dense_weight=round(1 - share, 2), candidates=depth, long_bm25=0.8
                )
            )
    return out


@dataclass
class Arm:
    """One index (``overrides``: its chunking settings) and the candidate lists collected on it."""

    name: str
    overrides: dict[str, Any]
    lists: CandidateLists


@dataclass
class TuneResult:
    """``chosen`` / ``default`` (arm name, trial); ``heldout``: metric name -> {"chosen", "default"}
    means over the held-out folds; ``all``: the chosen and default trials' means on every question;
    ``table``: (arm, trial label, mean metric on all questions) for every setting, best first."""

    metric: str
    folds: int
    seed: int
    queries: int
    chosen: tuple[str, Trial]
    default: tuple[str, Trial]
    heldout: dict[str, dict[str, float]]
    all: dict[str, dict[str, float]]
    fold_choices: list[str] = field(default_factory=list)
    table: list[tuple[str, str, float]] = field(default_factory=list)


Reranker = Callable[[str, list[SearchHit], int], list[SearchHit]]


def ranking(lists: CandidateLists, i: int, t: Trial, reranker: Reranker | None, depth: int) -> list[str]:
    """Question ``i``'s chunk ids, best first, under ``t`` (the top ``depth`` reordered by the reranker
    when ``t.rerank``)."""
    ranked = fused(lists, i, t)
    if not t.rerank or reranker is None:
        return [cid for cid, _ in ranked]
    hits = [SearchHit(lists.chunks[cid], s, r) for r, (cid, s) in enumerate(ranked[:depth], 1)]
    return [h.chunk.chunk_id for h in reranker(lists.queries[i].question, hits, depth)]


def score_matrix(
    lists: CandidateLists, trials: Sequence[Trial], reranker: Reranker | None = None, depth: int = 30
) -> list[list[dict[str, float]]]:
    """[trial][question] -> the figures of that question under that trial."""
    n = len(lists.queries)
    return [[query_metrics(lists, i, ranking(lists, i, t, reranker, depth)) for i in range(n)] for t in trials]


def fold_of(n: int, folds: int, seed: int) -> list[int]:
    """Question index -> fold (0..folds-1): a seeded shuffle dealt round-robin, so fold sizes differ by at most one."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    out = [0] * n
    for pos, i in enumerate(order):
        out[i] = pos % folds
    return out


def _mean(rows: list[dict[str, float]], idx: Sequence[int], metric: str) -> float:
    return statistics.fmean(rows[i][metric] for i in idx) if idx else 0.0


def select(
    candidates: list[tuple[str, Trial]],
    scores: list[list[dict[str, float]]],
    default: int,
    metric: str,
    folds: int,
    seed: int,
) -> TuneResult:
    """Cross-validated choice among ``candidates`` (scores[j][i]: candidate j on question i), with
    ``candidates[default]`` as the baseline. Raises ValueError with fewer questions than folds."""
    n = len(scores[0]) if scores else 0
    if folds < 2 or n < folds:
        raise ValueError(f"{n} judged questions cannot be split into {folds} folds; give more questions or fewer folds")
    part = fold_of(n, folds, seed)
    metric_names = list(scores[0][0])
    held: dict[str, dict[str, list[float]]] = {m: {"chosen": [], "default": []} for m in metric_names}
    choices = []
    for f in range(folds):
        train = [i for i in range(n) if part[i] != f]
        test = [i for i in range(n) if part[i] == f]
        means = np.array([_mean(rows, train, metric) for rows in scores])
        best = int(np.flatnonzero(means == means.max())[0])  # ties: the earlier (simpler) setting
        choices.append(f"{candidates[best][0]} {candidates[best][1].label()}")
        for m in metric_names:
            held[m]["chosen"].append(_mean(scores[best], test, m))
            held[m]["default"].append(_mean(scores[default], test, m))
    everyone = list(range(n))
    overall = np.array([_mean(rows, everyone, metric) for rows in scores])
    best = int(np.flatnonzero(overall == overall.max())[0])
    order = np.argsort(-overall, kind="stable")
    return TuneResult(
        metric=metric,
        folds=folds,
        seed=seed,
        queries=n,
        chosen=candidates[best],
        default=candidates[default],
        heldout={m: {k: statistics.fmean(v) for k, v in d.items()} for m, d in held.items()},
        all={
            "chosen": {m: _mean(scores[best], everyone, m) for m in metric_names},
            "default": {m: _mean(scores[default], everyone, m) for m in metric_names},
        },
        fold_choices=choices,
        table=[(candidates[j][0], candidates[j][1].label(), float(overall[j])) for j in order],
    )


def tune(
    arms: Sequence[Arm],
    default: Trial,
    metric: str,
    folds: int = 5,
    seed: int = 0,
    reranker: Reranker | None = None,
    rerank_depth: int = 30,
    rerank_best: int = 3,
) -> TuneResult:
    """Search ``grid`` on every arm (the first arm is the current index, where ``default`` runs) and
    choose by ``select``. With a ``reranker``, the ``rerank_best`` best settings of the first arm are
    also scored with it on (the reranker sees the top ``rerank_depth`` chunks). Raises ValueError as
    ``select`` does, and for an unknown ``metric``."""
    candidates: list[tuple[str, Trial]] = []
    scores: list[list[dict[str, float]]] = []
    for a, arm in enumerate(arms):
        trials = grid(arm.lists.depth)
        if a == 0:
            trials = [default, *[t for t in trials if t != default]]
        rows = score_matrix(arm.lists, trials)
        if rows and rows[0] and metric not in rows[0][0]:
            raise ValueError(f"unknown metric {metric!r}: choose one of {', '.join(rows[0][0])}")
        candidates += [(arm.name, t) for t in trials]
        scores += rows
        if reranker is not None and a == 0:
            means = [statistics.fmean(r[metric] for r in row) for row in rows]
            best = sorted(range(len(trials)), key=lambda j: -means[j])[:rerank_best]
            on = [replace(trials[j], rerank=True) for j in best]
            candidates += [(arm.name, t) for t in on]
            scores += score_matrix(arm.lists, on, reranker, rerank_depth)
    return select(candidates, scores, 0, metric, folds, seed)


def chosen_settings(result: TuneResult, arms: Sequence[Arm], reranker_dir: str | None) -> dict[str, Any]:
    """Dotted keys -> values of the chosen setting: its retrieval keys, the chunking of its index,
    and the reranker when it is on."""
    arm_name, trial = result.chosen
    out = dict(trial.settings())
    out.update(next(a.overrides for a in arms if a.name == arm_name))
    if trial.rerank and reranker_dir:
        out.update({"rerank.method": "cross-encoder", "rerank.model_path": reranker_dir})
    return out


def write_toml(path, values: dict[str, Any], notes: Sequence[str]) -> None:
    """Set dotted ``values`` in the TOML file ``path`` (created when missing), keeping every other key
    and comment of it; ``notes`` become comment lines in the first table written (the notes of an
    earlier run, comments that say "groundwork tune", are removed). Raises OSError when the file cannot
    be read or written, tomlkit's ParseError when it is not valid TOML."""
    import tomlkit  # only tune writes TOML
    from tomlkit.items import Comment, Null

    doc = tomlkit.parse(path.read_text(encoding="utf-8")) if path.exists() else tomlkit.document()
    for _, table in doc.body:  # an earlier run's notes describe settings about to be replaced
        body = getattr(getattr(table, "value", None), "body", None)
        for j, (_, item) in enumerate(body or []):
            if isinstance(item, Comment) and "groundwork tune" in item.as_string():
                body[j] = (None, Null())  # how tomlkit removes an item: the key indexes stay valid
    first = True
    for dotted, value in values.items():
        section, key = dotted.split(".", 1)
        if section not in doc:
            doc.add(section, tomlkit.table())
        table = doc[section]
        if first:
            for line in notes:
                table.add(tomlkit.comment(line))
            first = False
        table[key] = value
    path.write_text(tomlkit.dumps(doc), encoding="utf-8")
