"""``groundwork tune``: search retrieval settings on judged questions, report held-out figures, write groundwork.toml."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from groundwork.cli.common import ConfigOpt, err, out, user_errors
from groundwork.cli.eval_cmds import (
    _CACHE,
    _CORPUS,
    _EVAL_SET,
    _FORMAT,
    _JSON,
    _QRELS,
    _QUERIES,
    load_dataset,
    settings_for,
)
from groundwork.config import Settings
from groundwork.errors import RequestError
from groundwork.evaluate.candidates import Trial, collect_candidates
from groundwork.evaluate.datasets import EvalDataset
from groundwork.evaluate.index_cache import index_path, open_index
from groundwork.evaluate.report import write_json
from groundwork.evaluate.tune import Arm, TuneResult, chosen_settings, default_metric, tune, write_toml


def _arms(
    dataset: EvalDataset, base: Settings, chunk_sizes: list[int], build: bool, cache: Path | None, depth: int
) -> list[Arm]:
    """The current index first, then one per other chunk size whose eval index is cached (or built with ``build``)."""
    arms = []
    sizes = [base.chunking.chunk_tokens, *[c for c in chunk_sizes if c != base.chunking.chunk_tokens]]
    for i, size in enumerate(sizes):
        s = base.model_copy(update={"chunking": base.chunking.model_copy(update={"chunk_tokens": size})})
        if i > 0 and not build and not index_path(dataset, s, cache).exists():
            err.print(f"skipping chunks of {size} tokens: no cached index (add --build to build it)")
            continue
        with err.status(f"indexing {dataset.name}, chunks of {size} tokens (cached after the first run)"):
            kb = open_index(dataset, s, cache)
        with err.status(f"searching {sum(1 for q in dataset.queries if q.qrels)} questions once per side"):
            lists = collect_candidates(dataset, kb, depth)
        arms.append(Arm(f"chunks {size}", {"chunking.chunk_tokens": size} if i > 0 else {}, lists))
    return arms


def _default_trial(s: Settings) -> Trial:
    r = s.retrieval
    return Trial(
        r.mode,
        r.fusion,
        r.bm25_weight,
        r.dense_weight,
        r.candidates,
        r.rrf_k,
        r.long_query_bm25_weight,
        r.short_query_words,
        r.long_query_words,
    )


def _print(result: TuneResult, top: int) -> None:
    m = result.metric
    h = result.heldout[m]
    out.print(
        f"{result.queries} judged questions, {result.folds}-fold cross-validation (seed {result.seed}), by {m}:\n"
        f"  held-out {m}: chosen {h['chosen']:.4f}  default {h['default']:.4f}  ({h['chosen'] - h['default']:+.4f})\n"
        f"  chosen: {escape(result.chosen[0])}, {escape(result.chosen[1].label())}\n"
        f"  default: {escape(result.default[0])}, {escape(result.default[1].label())}"
    )
    table = Table(title=f"best {top} settings, {m} on all questions")
    for col in ("index", "setting", m):
        table.add_column(col)
    for arm, label, v in result.table[:top]:
        table.add_row(escape(arm), escape(label), f"{v:.4f}")
    out.print(table)


def tune_cmd(
    corpus: Path | None = _CORPUS,
    queries: Path | None = _QUERIES,
    qrels: Path | None = _QRELS,
    eval_set: Path | None = _EVAL_SET,
    fmt: str | None = _FORMAT,
    config: ConfigOpt = None,
    metric: str | None = typer.Option(
        None, "--metric", help="Figure to maximise [default: ndcg@10; MultiHop-RAG: mrr@10]"
    ),
    folds: int = typer.Option(5, "--folds", min=2, help="Cross-validation folds"),
    seed: int = typer.Option(0, "--seed", help="Seed of the shuffle that deals questions into folds"),
    chunk_tokens: str | None = typer.Option(
        None, "--chunk-tokens", help="Comma-separated chunk sizes to try besides the current one (each its own index)"
    ),
    build: bool = typer.Option(
        False, "--build", help="Build the indexes of --chunk-tokens that are not cached (embeds the corpus)"
    ),
    reranker: Path | None = typer.Option(
        None, "--reranker", help="Cross-encoder model folder: also try the best settings with it on"
    ),
    depth: int = typer.Option(100, "--depth", min=10, max=1000, help="Chunks collected per side and question"),
    output: Path = typer.Option(
        Path("groundwork.toml"), "--output", help="Settings file to write the chosen settings to"
    ),
    write: bool = typer.Option(True, "--write/--no-write", help="Write the chosen settings (else only report)"),
    json_out: Path | None = _JSON,
    cache: Path | None = _CACHE,
) -> None:
    """Choose retrieval settings on your judged questions (k-fold), report held-out figures, write them to groundwork.toml."""
    with user_errors():
        dataset = load_dataset(fmt, corpus, queries, qrels, eval_set)
        base = settings_for(config)
        sizes = [int(c) for c in chunk_tokens.split(",") if c.strip()] if chunk_tokens else []
        arms = _arms(dataset, base, sizes, build, cache, depth)
        rerank_fn = None
        if reranker is not None:
            from groundwork.retrieve.rerank import CrossEncoderReranker

            rerank_fn = CrossEncoderReranker(reranker, base.rerank.batch_size, base.embedder.device).rerank
        try:
            result = tune(
                arms,
                _default_trial(base),
                metric or default_metric(dataset.fmt),
                folds,
                seed,
                rerank_fn,
                base.rerank.depth,
            )
        except ValueError as exc:
            raise RequestError(str(exc)) from None
        _print(result, 10)
        values = chosen_settings(result, arms, str(reranker) if reranker else None)
        h = result.heldout[result.metric]
        notes = [
            f"groundwork tune on {dataset.name}: {result.queries} questions, {result.folds}-fold, seed {result.seed}",
            f"groundwork tune: held-out {result.metric} {h['chosen']:.4f} (default {h['default']:.4f})",
        ]
        if write:
            write_toml(output, values, notes)
            out.print(f"wrote {len(values)} settings to {escape(str(output))}")
        if json_out:
            write_json(
                json_out,
                {
                    "metric": result.metric,
                    "folds": result.folds,
                    "seed": result.seed,
                    "queries": result.queries,
                    "heldout": result.heldout,
                    "all": result.all,
                    "chosen": {"index": result.chosen[0], "setting": result.chosen[1].label(), "settings": values},
                    "default": {"index": result.default[0], "setting": result.default[1].label()},
                    "fold_choices": result.fold_choices,
                    "table": [{"index": a, "setting": s, result.metric: v} for a, s, v in result.table],
                },
            )
