"""``groundwork eval ...``: retrieval, answers, compare, gate."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import typer

from groundwork.cli.common import ConfigOpt, err, out, settings, user_errors
from groundwork.config import Settings
from groundwork.errors import RequestError
from groundwork.evaluate.datasets import EvalDataset, load_beir, load_eval_set, load_multihop
from groundwork.evaluate.index_cache import open_index
from groundwork.evaluate.report import bar_chart, per_type_table, print_results, write_json
from groundwork.evaluate.retrieval import evaluate_retrieval
from groundwork.kb import KnowledgeBase

eval_app = typer.Typer(
    rich_markup_mode=None, no_args_is_help=True, help="Measure retrieval and answers on benchmark sets."
)

FORMATS = ("beir", "multihop-rag", "groundwork")


def load_dataset(
    fmt: str | None, corpus: Path | None, queries: Path | None, qrels: Path | None, eval_set: Path | None
) -> EvalDataset:
    """Pick the layout from the options given: --eval-set (groundwork), --qrels (beir), else --format."""
    fmt = fmt or ("groundwork" if eval_set else "beir" if qrels else None)
    if fmt not in FORMATS:
        raise RequestError(f"give --eval-set, or --corpus/--queries/--qrels, or --format one of {', '.join(FORMATS)}")
    if fmt == "groundwork":
        if eval_set is None:
            raise RequestError("--format groundwork needs --eval-set FILE")
        return load_eval_set(eval_set, corpus)
    if corpus is None or queries is None:
        raise RequestError(f"--format {fmt} needs --corpus and --queries")
    if fmt == "beir":
        if qrels is None:
            raise RequestError("--format beir needs --qrels")
        return load_beir(corpus, queries, qrels)
    return load_multihop(corpus, queries)


def settings_for(config: Path | None, **overrides: Any) -> Settings:
    """The settings of one evaluated configuration: ``config`` (else the global --config) and flags."""
    return settings(None, config, **overrides)


def index(dataset: EvalDataset, settings: Settings, cache: Path | None) -> KnowledgeBase:
    with err.status(f"indexing {dataset.name} (cached after the first run)"):
        return open_index(dataset, settings, cache)


def run_retrieval(
    dataset: EvalDataset, kb: KnowledgeBase, mode: str | None, top_k: int, group_by: str | None = None
) -> dict:
    with err.status(
        f"running {sum(1 for q in dataset.queries if q.qrels)} queries ({mode or kb.settings.retrieval.mode})"
    ):
        return evaluate_retrieval(dataset, kb, mode, top_k, group_by)


_CORPUS = typer.Option(None, "--corpus", help="Corpus file (BEIR corpus.jsonl, MultiHop-RAG corpus.json) or folder")
_QUERIES = typer.Option(None, "--queries", help="Queries file")
_QRELS = typer.Option(None, "--qrels", help="BEIR qrels TSV")
_EVAL_SET = typer.Option(None, "--eval-set", help="Groundwork eval set (JSONL)")
_FORMAT = typer.Option(None, "--format", help="beir | multihop-rag | groundwork [default: from the options given]")
_CACHE = typer.Option(
    None, "--cache", help="Index cache folder [default: $GROUNDWORK_EVAL_CACHE or ~/.cache/groundwork/eval]"
)
_MODE = typer.Option(None, "--mode", help="bm25 | dense | hybrid [default: from settings]")
_JSON = typer.Option(None, "--json", help="Write every figure to this JSON file")
_GROUP_BY = typer.Option(
    None,
    "--group-by",
    help="document: rank top-k distinct documents (BEIR's definition); chunk: the documents of the top-k chunks "
    "[default: document; MultiHop-RAG: chunk, its official metrics are chunk-level]",
)
_EMBEDDER = typer.Option(
    None,
    "--embedder",
    help="A sentence-transformers model folder (e.g. from `groundwork adapt embeddings`) instead of the configured one",
)


@eval_app.command("retrieval")
def retrieval_cmd(
    corpus: Path | None = _CORPUS,
    queries: Path | None = _QUERIES,
    qrels: Path | None = _QRELS,
    eval_set: Path | None = _EVAL_SET,
    fmt: str | None = _FORMAT,
    mode: str | None = _MODE,
    config: ConfigOpt = None,
    top_k: int = typer.Option(10, "--top-k", help="Documents per search (chunks with --group-by chunk)"),
    group_by: str | None = _GROUP_BY,
    embedder: Path | None = _EMBEDDER,
    json_out: Path | None = _JSON,
    cache: Path | None = _CACHE,
) -> None:
    """nDCG@10, recall@10/100, MRR@10, MAP@10, hits@4/10 and latency, per question type where known."""
    with user_errors():
        dataset = load_dataset(fmt, corpus, queries, qrels, eval_set)
        settings = settings_for(config, **{"embedder.model": str(embedder) if embedder else None})
        result = run_retrieval(dataset, index(dataset, settings, cache), mode, top_k, group_by)
    label = result["config"]["mode"]
    print_results(
        {label: result},
        out,
        title=f"{dataset.name}: {result['queries']} queries, chunks of at most {result['config']['chunk_tokens']} tokens",
    )
    if json_out:
        write_json(json_out, result)
        out.print(f"wrote {json_out}")


def _parse_set(items: list[str]) -> dict[str, Any]:
    """--set key=value pairs (dotted keys) as settings overrides."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise RequestError(f"--set takes key=value, not '{item}'")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


@eval_app.command("compare")
def compare_cmd(
    configs: list[Path] = typer.Option([], "--config", help="Settings file per configuration (repeat)"),
    modes: str | None = typer.Option(None, "--modes", help="Comma-separated retrieval modes, each run on every config"),
    corpus: Path | None = _CORPUS,
    queries: Path | None = _QUERIES,
    qrels: Path | None = _QRELS,
    eval_set: Path | None = _EVAL_SET,
    fmt: str | None = _FORMAT,
    answers: bool = typer.Option(False, "--answers", help="Also run answer metrics for each configuration"),
    limit: int = typer.Option(0, "--limit", help="Answers: only the first N queries (0 = all)"),
    set_: list[str] = typer.Option([], "--set", help="key=value override applied to every configuration"),
    top_k: int = typer.Option(10, "--top-k"),
    group_by: str | None = _GROUP_BY,
    json_out: Path | None = typer.Option(None, "--json", help="Write all results to this JSON file"),
    plot: Path | None = typer.Option(None, "--plot", help="Write a bar chart (PNG)"),
    cache: Path | None = _CACHE,
) -> None:
    """Run several configurations on the same data in one run; print them side by side."""
    with user_errors():
        dataset = load_dataset(fmt, corpus, queries, qrels, eval_set)
        overrides = _parse_set(set_)
        runs: list[tuple[str, Settings, str | None]] = []
        for cfg in configs or [None]:
            settings = settings_for(cfg, **overrides)
            for mode in modes.split(",") if modes else [None]:
                label = "+".join(x for x in ((cfg.stem if cfg else ""), mode or "") if x) or "default"
                runs.append((label, settings, mode))
        results: dict[str, dict] = {}
        for label, settings, mode in runs:
            kb = index(dataset, settings, cache)
            results[label] = run_retrieval(dataset, kb, mode, top_k, group_by)
            if answers:
                from groundwork.evaluate.answers import evaluate_answers

                with err.status(f"answering ({label})"):
                    results[label].update(evaluate_answers(dataset, kb, mode=mode, limit=limit))
    print_results(results, out, title=f"{dataset.name}: {len(runs)} configurations")
    if json_out:
        write_json(json_out, results)
        out.print(f"wrote {json_out}")
    if plot:
        bar_chart(results, plot, title=dataset.name)
        out.print(f"wrote {plot}")


@eval_app.command("answers")
def answers_cmd(
    corpus: Path | None = _CORPUS,
    queries: Path | None = _QUERIES,
    qrels: Path | None = _QRELS,
    eval_set: Path | None = _EVAL_SET,
    fmt: str | None = _FORMAT,
    mode: str | None = _MODE,
    config: ConfigOpt = None,
    limit: int = typer.Option(0, "--limit", help="Only the first N queries (0 = all)"),
    no_bertscore: bool = typer.Option(False, "--no-bertscore", help="Skip BERTScore"),
    embedder: Path | None = _EMBEDDER,
    json_out: Path | None = _JSON,
    cache: Path | None = _CACHE,
) -> None:
    """ROUGE, BLEU, BERTScore, containment, abstention, citation precision and faithfulness of `ask`."""
    from groundwork.evaluate.answers import evaluate_answers

    with user_errors():
        dataset = load_dataset(fmt, corpus, queries, qrels, eval_set)
        settings = settings_for(config, **{"embedder.model": str(embedder) if embedder else None})
        kb = index(dataset, settings, cache)
        with err.status(f"answering {limit or len(dataset.queries)} questions"):
            result = evaluate_answers(dataset, kb, mode=mode, limit=limit, bertscore=not no_bertscore)
    result["config"] = {
        "dataset": dataset.name,
        "mode": mode or settings.retrieval.mode,
        "generator": kb.generator.model_id,
        "abstain_threshold": settings.answer.abstain_threshold,
        "chunk_tokens": settings.chunking.chunk_tokens,
    }
    label = result["config"]["mode"]
    print_results({label: result}, out, title=f"{dataset.name}: answers")
    if "answer_per_type" in result:
        out.print(per_type_table({label: {"per_type": result["answer_per_type"]}}, "containment"))
    out.print(f"[dim]{result['bertscore_note']}; LLM judge {result['llm_judge']}[/]")
    if json_out:
        write_json(json_out, result)
        out.print(f"wrote {json_out}")


def measure(set_path: Path, mode: str | None, settings: Settings, cache: Path | None) -> tuple[EvalDataset, dict]:
    """The gate's figures (retrieval and answer metrics) of ``settings`` on an eval set."""
    from groundwork.evaluate.answers import evaluate_answers

    dataset = load_eval_set(set_path)
    kb = index(dataset, settings, cache)
    with err.status("measuring"):
        return dataset, evaluate_retrieval(dataset, kb, mode) | evaluate_answers(dataset, kb, mode=mode)


@eval_app.command("gate")
def gate_cmd(
    baseline: Path = typer.Option(..., "--baseline", help="Baseline JSON (see groundwork.evaluate.gate)"),
    config: ConfigOpt = None,
    update: bool = typer.Option(False, "--update", help="Write the measured figures as the new baseline"),
    eval_set: list[Path] = typer.Option(
        [], "--eval-set", help="With --update: the eval set(s) to record (repeat: the first is the main one)"
    ),
    cache: Path | None = _CACHE,
) -> None:
    """Exit 1 when any metric of any recorded eval set falls more than its tolerance below the baseline."""
    from rich.table import Table

    from groundwork.evaluate.gate import compare, new_baseline, read_baseline, suites

    with user_errors():
        base = None if (update and eval_set) else read_baseline(baseline)
        mode = base.get("mode") if base else None
        sets = (
            [(Path(p).stem if i else "", Path(p), None) for i, p in enumerate(eval_set)]
            if base is None
            else [(label, baseline.parent / b["eval_set"], b) for label, b in suites(base)]
        )
        measured = [(label, path, b, _measure_gate_set(path, config, cache, mode)) for label, path, b in sets]
    if update:
        names = [_relative(path, baseline) for _, path, _, _ in measured]
        extra = [(name, cur) for name, (_, _, _, cur) in zip(names[1:], measured[1:])]
        tol = base.get("tolerance", 0.02) if base else 0.02
        write_json(baseline, new_baseline(names[0], mode, measured[0][3], tol, extra))
        out.print(f"wrote {baseline}")
        return
    checks = [
        replace(c, metric=f"{label}: {c.metric}" if label else c.metric)
        for label, _, b, current in measured
        for c in compare(b, current)
    ]
    table = Table(title=f"gate: {', '.join(p.name for _, p, _, _ in measured)} against {baseline}")
    for col in ("metric", "baseline", "current", "tolerance", "result"):
        table.add_column(col, justify="right" if col != "metric" else "left")
    for c in checks:
        cur = "missing" if c.current is None else f"{c.current:.4f}"
        table.add_row(
            c.metric,
            f"{c.baseline:.4f}",
            cur,
            f"{c.tolerance:.3f}",
            "[green]ok[/]" if c.passed else "[red]REGRESSION[/]",
        )
    out.print(table)
    failed = [c.metric for c in checks if not c.passed]
    if failed:
        err.print(f"[bold red]gate failed:[/] {', '.join(failed)}")
        raise typer.Exit(1)
    out.print("gate passed")


def _measure_gate_set(path: Path, config: Path | None, cache: Path | None, mode: str | None) -> dict:
    return measure(path, mode, settings_for(config), cache)[1]


def _relative(path: Path, baseline: Path) -> str:
    """``path`` relative to the baseline's folder when it lies under it, else as given."""
    folder = baseline.resolve().parent
    return str(path.resolve().relative_to(folder)) if path.resolve().is_relative_to(folder) else str(path)
