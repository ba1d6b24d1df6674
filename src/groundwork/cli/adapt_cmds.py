"""`groundwork adapt ...` commands: embeddings, reranker, lora."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape

from groundwork.cli.common import ConfigOpt, KbOpt, err, open_kb, out, user_errors
from groundwork.errors import RequestError

adapt_app = typer.Typer(
    rich_markup_mode=None, no_args_is_help=True, help="Fine-tune where evaluation shows retrieval is not enough."
)


_PAIRS = typer.Option(None, "--pairs", exists=True, dir_okay=False, help="JSONL of {query, positive[, negative]}")
_BEIR_DIR = typer.Option(
    None, "--beir-dir", exists=True, file_okay=False, help="BEIR folder (corpus.jsonl, queries.jsonl)"
)
_QRELS = typer.Option(None, "--qrels", exists=True, dir_okay=False, help="BEIR qrels TSV (with --beir-dir)")
_DEV_FRACTION = typer.Option(
    0.2, "--dev-fraction", min=0.0, max=0.9, help="Share of queries held out for the before/after figures"
)


def _read_pairs(
    pairs: Path | None, beir_dir: Path | None, qrels: Path | None, synthesize: Path | None = None, can_synth=True
):
    """The PairSet of exactly one of --pairs, --beir-dir (+ --qrels), --synthesize; raises PairsError."""
    from groundwork.adapt.pairs import PairsError, load_documents, read_beir, read_pairs, synthesize_pairs

    if sum(x is not None for x in (pairs, beir_dir, synthesize)) != 1:
        raise PairsError(
            "give exactly one of --pairs F, --beir-dir DIR --qrels F" + (", --synthesize DIR" if can_synth else "")
        )
    if pairs:
        return read_pairs(pairs)
    if beir_dir:
        if qrels is None:
            raise PairsError("--beir-dir needs --qrels F (e.g. DIR/qrels/train.tsv)")
        return read_beir(beir_dir, qrels)
    return synthesize_pairs(load_documents(synthesize))


def _base_path(base: str | None) -> str:
    from groundwork.config import BUNDLED_MODEL
    from groundwork.index.embedder import model_path

    return str(model_path(base or BUNDLED_MODEL)[0])


@adapt_app.command("embeddings")
def embeddings_cmd(
    pairs: Path | None = _PAIRS,
    beir_dir: Path | None = _BEIR_DIR,
    qrels: Path | None = _QRELS,
    synthesize: Path | None = typer.Option(
        None, "--synthesize", exists=True, help="Build (heading/title, section) pairs from the documents in this folder"
    ),
    base: str | None = typer.Option(None, "--base", help="Base model folder [default: the bundled MiniLM]"),
    hard_negatives: str = typer.Option("bm25", "--hard-negatives", help="bm25 | none"),
    epochs: int = typer.Option(1, "--epochs", min=1),
    batch_size: int = typer.Option(32, "--batch-size", min=2),
    lr: float = typer.Option(2e-5, "--lr", help="Learning rate (AdamW, linear decay after 10% warm-up)"),
    dev_fraction: float = _DEV_FRACTION,
    out_dir: Path = typer.Option(Path("models/groundwork-embedder"), "--out", help="Output model folder"),
    json_out: Path | None = typer.Option(None, "--json", help="Write the figures as JSON"),
) -> None:
    """Fine-tune the embedding model (MultipleNegativesRankingLoss), report dev nDCG@10 before/after."""
    from groundwork.adapt.embeddings import fine_tune

    with user_errors():
        if hard_negatives not in ("bm25", "none"):
            raise RequestError("--hard-negatives must be bm25 or none")
        ps = _read_pairs(pairs, beir_dir, qrels, synthesize)
        with err.status(f"fine-tuning on {len(ps.pairs)} pairs"):
            result = fine_tune(
                ps,
                _base_path(base),
                out_dir,
                epochs,
                batch_size,
                lr,
                dev_fraction=dev_fraction,
                hard_negatives=hard_negatives,
            )
    b, a = result.before, result.after
    out.print(
        f"trained {result.train_pairs} pairs ({result.hard_negatives} hard negatives), {result.steps} steps, {result.train_seconds} s"
    )
    if b:
        out.print(
            f"dev nDCG@10 {b['ndcg@10']:.4f} -> {a['ndcg@10']:.4f} ({a['ndcg@10'] - b['ndcg@10']:+.4f}); "
            f"recall@10 {b['recall@10']:.4f} -> {a['recall@10']:.4f} on {result.dev_queries} held-out queries"
        )
    out.print(f"model written to {out_dir} (model card: {out_dir / 'README.md'})")
    if json_out:
        json_out.write_text(json.dumps(result.to_dict(), indent=2))


@adapt_app.command("reranker")
def reranker_cmd(
    pairs: Path | None = _PAIRS,
    beir_dir: Path | None = _BEIR_DIR,
    qrels: Path | None = _QRELS,
    base: str | None = typer.Option(None, "--base", help="Base encoder folder [default: the bundled MiniLM]"),
    negatives: int = typer.Option(3, "--negatives", min=0, max=20, help="BM25 hard negatives per judged pair"),
    max_rows: int = typer.Option(
        4000, "--max-rows", min=0, help="Cap on training rows, positives + negatives (0 = all)"
    ),
    max_length: int = typer.Option(256, "--max-length", min=16, max=512, help="Tokens per (query, passage)"),
    epochs: int = typer.Option(1, "--epochs", min=1),
    batch_size: int = typer.Option(16, "--batch-size", min=2),
    lr: float = typer.Option(5e-5, "--lr", help="Learning rate (AdamW, linear decay after 10% warm-up)"),
    dev_fraction: float = _DEV_FRACTION,
    dev_depth: int = typer.Option(
        30, "--dev-depth", min=0, max=1000, help="Dev figures: BM25 documents reordered per query (0 = skip)"
    ),
    seed: int = typer.Option(13, "--seed", help="Seed of the train/dev split, the row order and the head"),
    out_dir: Path = typer.Option(Path("models/groundwork-reranker"), "--out", help="Output model folder"),
    json_out: Path | None = typer.Option(None, "--json", help="Write the figures as JSON"),
) -> None:
    """Train a cross-encoder reranker (BCE, BM25 hard negatives); report dev nDCG@10 before/after."""
    from groundwork.adapt.reranker import train_reranker

    with user_errors():
        ps = _read_pairs(pairs, beir_dir, qrels, can_synth=False)
        with err.status(f"training a reranker on {len(ps.pairs)} judged pairs"):
            r = train_reranker(
                ps,
                _base_path(base),
                out_dir,
                epochs,
                batch_size,
                lr,
                negatives,
                max_rows,
                max_length,
                dev_fraction,
                dev_depth,
                seed,
            )
    out.print(f"trained {r.train_rows} rows of {r.train_queries} queries, {r.steps} steps, {r.train_seconds} s")
    if r.before:
        out.print(
            f"dev nDCG@10 (BM25 top {dev_depth} reordered) {r.before['ndcg@10']:.4f} -> {r.after['ndcg@10']:.4f} "
            f"({r.after['ndcg@10'] - r.before['ndcg@10']:+.4f}) on {r.dev_queries} held-out queries; "
            f"scoring {r.after['ms_p50']:.0f} ms p50 per query"
        )
    out.print(
        f"model written to {out_dir} (model card: {out_dir / 'README.md'}); use it with "
        f'rerank.method = "cross-encoder", rerank.model_path = "{out_dir}"'
    )
    if json_out:
        json_out.write_text(json.dumps(r.to_dict(), indent=2))


@adapt_app.command("lora")
def lora_cmd(
    base: Path = typer.Option(
        ..., "--base", exists=True, file_okay=False, help="Causal LM folder (AutoModelForCausalLM)"
    ),
    data: Path | None = typer.Option(
        None, "--data", exists=True, dir_okay=False, help="JSONL of {instruction, context, answer}"
    ),
    data_from_eval: Path | None = typer.Option(
        None,
        "--data-from-eval",
        exists=True,
        dir_okay=False,
        help="Build records from this eval set and the knowledge base (--kb)",
    ),
    rank: int = typer.Option(8, "--rank", min=1),
    alpha: int = typer.Option(16, "--alpha", min=1),
    epochs: int = typer.Option(3, "--epochs", min=1),
    lr: float = typer.Option(2e-4, "--lr"),
    batch_size: int = typer.Option(4, "--batch-size", min=1),
    grad_accum: int = typer.Option(2, "--grad-accum", min=1, help="Gradient accumulation steps"),
    device: str = typer.Option("cpu", "--device"),
    out_dir: Path = typer.Option(Path("models/groundwork-lora"), "--out", help="Adapter folder"),
    kb: KbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Train a LoRA adapter for the `transformers` generator; saves the adapter and loss.png."""
    from groundwork.adapt.lora import read_records, records_from_eval, train_lora

    with user_errors():
        if (data is None) == (data_from_eval is None):
            raise RequestError("give exactly one of --data F or --data-from-eval EVAL_SET")
        if data is not None:
            records = read_records(data)
        else:
            records = records_from_eval(data_from_eval, open_kb(kb, config))
            if len(records) < 2:
                raise RequestError(f"{data_from_eval}: fewer than 2 answerable questions with reference answers")
        with err.status(f"training a LoRA adapter on {len(records)} records"):
            r = train_lora(records, base, out_dir, rank, alpha, epochs, lr, batch_size, grad_accum, device=device)
    out.print(
        f"trained {r.train_records} records ({r.dev_records} held out), {r.epochs} epochs, {r.steps} steps, {r.seconds} s"
    )
    out.print(f"held-out loss per epoch: {', '.join(f'{x:.3f}' for x in r.dev_loss)}")
    out.print(
        f"adapter written to {out_dir} (loss curve {out_dir / 'loss.png'}); use it with "
        f"`groundwork ask --generator transformers --model-path {base} --adapter-path {out_dir}`"
    )


def decide_cmd(
    eval_set: Path | None = typer.Option(None, "--eval-set", help="Groundwork eval set (JSONL)"),
    fmt: str | None = typer.Option(None, "--format", help="beir | multihop-rag | groundwork"),
    corpus: Path | None = typer.Option(None, "--corpus"),
    queries: Path | None = typer.Option(None, "--queries"),
    qrels: Path | None = typer.Option(None, "--qrels"),
    config: ConfigOpt = None,
    generator: str | None = typer.Option(None, "--generator", help="extractive | openai | bedrock | transformers"),
    model: str | None = typer.Option(None, "--model"),
    model_path: Path | None = typer.Option(None, "--model-path"),
    base_url: str | None = typer.Option(None, "--base-url"),
    embedder: Path | None = typer.Option(None, "--embedder", help="A fine-tuned embedder folder to compare"),
    adapter: Path | None = typer.Option(None, "--adapter", help="A LoRA adapter folder (needs --model-path)"),
    limit: int = typer.Option(0, "--limit", help="Only the first N questions for answer metrics (0 = all)"),
    price_in: float = typer.Option(0.0, "--price-in", help="USD per 1M input tokens"),
    price_out: float = typer.Option(0.0, "--price-out", help="USD per 1M output tokens"),
    min_gain: float = typer.Option(0.02, "--min-gain", help="Smallest gain that justifies a fine-tuned component"),
    json_out: Path | None = typer.Option(None, "--json"),
    plot: Path | None = typer.Option(None, "--plot", help="Write a bar chart (PNG)"),
    cache: Path | None = typer.Option(None, "--cache", help="Index cache folder"),
) -> None:
    """Prompt-only vs RAG vs fine-tuned vs both on your eval set; prints a table and a recommendation."""
    from groundwork.adapt.decide import run_decision
    from groundwork.cli.eval_cmds import load_dataset, settings_for
    from groundwork.evaluate.report import bar_chart, metrics_table, write_json

    with user_errors():
        if adapter is not None and model_path is None:
            raise RequestError("--adapter needs --model-path (the base model the adapter was trained on)")
        dataset = load_dataset(fmt, corpus, queries, qrels, eval_set)
        settings = settings_for(
            config,
            **{
                "generator.backend": generator,
                "generator.model": model,
                "generator.model_path": str(model_path) if model_path else None,
                "generator.base_url": base_url,
            },
        )
        with err.status("measuring every arm"):
            result = run_decision(dataset, settings, cache, embedder, adapter, limit, price_in, price_out, min_gain)
    cols = [
        "ndcg@10",
        "recall@10",
        "hits@10",
        "containment",
        "rougeL",
        "abstention_null",
        "false_abstention",
        "answer_latency_ms_p50",
        "tokens_in",
        "tokens_out",
        "cost_per_1k_queries_usd",
    ]
    out.print(metrics_table(result["arms"], cols, title=f"{result['dataset']}: decide ({result['generator']})"))
    out.print("[bold]Recommendation:[/] " + escape(result["recommendation"]["choice"]))
    for step in result["recommendation"]["steps"]:
        out.print("  " + escape(step))
    if json_out:
        write_json(json_out, result)
        out.print(f"wrote {json_out}")
    if plot:
        bar_chart(
            result["arms"], plot, ["ndcg@10", "hits@10", "containment", "rougeL"], title=f"{result['dataset']}: decide"
        )
        out.print(f"wrote {plot}")
