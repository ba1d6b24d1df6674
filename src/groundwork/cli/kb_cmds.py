"""Commands on the knowledge base: ingest, search, ask, reindex, rollback, versions, documents.

Exit codes: 0 success; 1 ``ingest`` finished but some files failed; 2 bad input or settings.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from groundwork.cli.common import ConfigOpt, KbOpt, display, err, open_kb, out, print_json, user_errors
from groundwork.errors import ConfigError
from groundwork.types import DocumentHit, IngestReport, SearchHit, document_label, page_label

if TYPE_CHECKING:
    from groundwork.kb import KnowledgeBase


def ingest(
    paths: list[str] = typer.Argument(
        None,
        help="Files, folders, s3://bucket/prefix, and web sources: https://site/sitemap.xml or a start page to crawl",
        show_default=False,
    ),
    urls: list[Path] = typer.Option(
        [], "--urls", help="A file of web page URLs to ingest (one a line, '#' comments); repeatable"
    ),
    sync: bool = typer.Option(
        True, "--sync/--no-sync", help="Delete documents that vanished from the given folders/record files"
    ),
    text_field: str | None = typer.Option(None, help="JSON/JSONL: field holding the text"),
    id_field: str | None = typer.Option(None, help="JSON/JSONL: field holding a unique, stable id"),
    metadata_fields: str | None = typer.Option(
        None, help="JSON/JSONL: comma-separated fields kept as filterable metadata"
    ),
    title_field: str | None = typer.Option(
        None, help="JSON/JSONL: field holding the title that heads each chunk's indexed text [default: title]"
    ),
    chunker: str | None = typer.Option(None, help="fixed | structure | hierarchical | semantic"),
    chunk_tokens: int | None = typer.Option(None, help="Max tokens per chunk"),
    tenant: str | None = typer.Option(None, "--tenant", help="Access control: the documents' tenant"),
    allowed_groups: str | None = typer.Option(
        None, "--allowed-groups", help="Access control: comma-separated groups that may see the documents"
    ),
    engine: str = typer.Option("local", "--engine", help="local | ray (parse, chunk and embed as Ray Data stages)"),
    ray_address: str | None = typer.Option(
        None, "--ray-address", help="Ray cluster to join ('auto', ray://host:10001); default: start a local Ray"
    ),
    watch: bool = typer.Option(
        False, "--watch", help="Then keep watching the given files and folders, re-syncing changes until Ctrl-C"
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON"),
    kb: KbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Index files, folders and web sites (.md .txt .html .pdf .docx .json .jsonl); re-running syncs changes."""
    paths = paths or []
    if not paths and not urls:
        err.print("[red]error[/]: give a file, folder, s3:// or https:// source, or --urls FILE")
        raise typer.Exit(2)
    if watch and (urls or any("://" in p for p in paths) or engine != "local"):
        err.print(
            "[red]error[/]: --watch follows local files and folders with the local engine; "
            "sync S3 and web sources on a schedule with `serve` (serve.sources, serve.sync_interval_s)"
        )
        raise typer.Exit(2)
    with user_errors():
        kbase = open_kb(kb, config, **{"chunking.strategy": chunker, "chunking.chunk_tokens": chunk_tokens})
        fields = [f.strip() for f in metadata_fields.split(",") if f.strip()] if metadata_fields else None
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
            disable=as_json or not err.is_terminal,
        ) as bar:
            task = bar.add_task("loading model", total=None)

            def progress(path: str, done: int, total: int) -> None:
                bar.update(task, total=total, completed=done, description=escape(display(path)[-50:]) or "finishing")

            groups = [g.strip() for g in (allowed_groups or "").split(",") if g.strip()]
            args = {
                "text_field": text_field,
                "id_field": id_field,
                "metadata_fields": fields,
                "title_field": title_field,
                "tenant": tenant,
                "allowed_groups": groups,
            }
            report = kbase.ingest(
                paths, sync=sync, progress=progress, engine=engine, ray_address=ray_address, url_lists=urls, **args
            )
    _print_report(report, as_json)
    if watch:
        _watch(kbase, [Path(p) for p in paths], args, as_json)
        raise typer.Exit(0)
    raise typer.Exit(1 if report.failed else 0)


def _watch(kbase: KnowledgeBase, paths: list[Path], args: dict, as_json: bool) -> None:
    """Re-sync each batch of changes under ``paths`` until Ctrl-C; one line (or JSON report) per batch."""
    from groundwork.ingest.watch import Changes, watch

    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        err.print(f"[red]error[/]: cannot watch {escape(', '.join(missing))}: no such file or folder")
        raise typer.Exit(2)

    def apply(changes: Changes) -> None:
        _print_report(kbase.sync_changes(changes.changed, changes.deleted, **args), as_json)

    def ready() -> None:  # what changed while the watch was being set up (hashes only when nothing did)
        report = kbase.ingest(paths, sync=True, **args)
        if report.changed or report.failed:
            _print_report(report, as_json)
        if not as_json:
            err.print(f"watching {len(paths)} path(s) for changes; Ctrl-C stops")

    # Ctrl-C during a re-sync: its committed batches stay, and the next run finishes the rest.
    with user_errors(), contextlib.suppress(KeyboardInterrupt):
        watch(paths, apply, exclude=kbase.path, quiet_ms=kbase.settings.ingest.watch_quiet_ms, on_ready=ready)
    if not as_json:
        err.print("stopped watching")


def _print_report(report: IngestReport, as_json: bool) -> None:
    if as_json:
        print_json(report.to_dict())
    else:
        out.print(
            f"[bold]ingest[/]: {report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
            f"{report.deleted} deleted, {len(report.failed)} failed  "
            f"({report.chunks_written} chunks written, {report.chunks_embedded} embedded, {report.seconds:.1f} s)"
        )
        if report.not_modified:
            out.print(f"{report.not_modified} web page(s) not modified (HTTP 304): not downloaded")
        if report.version:
            out.print(f"index version {report.version}")
        for f in report.skipped:
            out.print(f"[yellow]skipped[/] {escape(display(f.path))}: {escape(f.reason)}")
        for f in report.failed:
            out.print(f"[red]failed[/]  {escape(display(f.path))}: {escape(f.reason)}")


def _hits_table(hits: list[SearchHit]) -> Table:
    table = Table(show_lines=False)
    for col in ("#", "score", "relevance", "source", "where", "text"):
        table.add_column(col, overflow="fold")
    for h in hits:
        c = h.chunk
        where = " > ".join(x for x in (c.heading, page_label(c.doc_id, c.source, c.page)) if x)
        snippet = " ".join(c.text.split())
        relevance = "" if h.relevance is None else f"{h.relevance:.3f}"
        table.add_row(
            str(h.rank), f"{h.score:.4f}", relevance, escape(display(c.source)), escape(where), escape(snippet[:160])
        )
    return table


def _documents_table(docs: list[DocumentHit]) -> Table:
    table = Table(show_lines=True)
    for col in ("#", "score", "relevance", "document", "passages"):
        table.add_column(col, overflow="fold")
    for d in docs:
        relevance = "" if d.relevance is None else f"{d.relevance:.3f}"
        lines = []
        for p in d.passages:
            c = p.chunk
            where = " > ".join(x for x in (c.heading, page_label(c.doc_id, c.source, c.page)) if x)
            lines.append(escape(f"[{where}] " if where else "") + escape(" ".join(c.text.split())[:160]))
        more = d.matched - len(d.passages)
        if more > 0:
            lines.append(f"[dim]+{more} more matching chunk{'s' if more > 1 else ''}[/]")
        label = escape(display(d.source) if d.doc_id == d.source else document_label(d.doc_id, d.source, d.title))
        table.add_row(str(d.rank), f"{d.score:.4f}", relevance, label, "\n".join(lines))
    return table


_RERANK_HELP = "none | mmr | cross-encoder | llm [default: rerank.method]"
_DECOMPOSE_HELP = "off | heuristic | llm: split multi-hop questions into sub-questions [default: retrieval.decompose]"


def search(
    query: str = typer.Argument(..., help="What to look for"),
    mode: str | None = typer.Option(None, help="bm25 | dense | hybrid [default: hybrid]"),
    top_k: int | None = typer.Option(None, "--top-k", help="How many chunks [default: 10]"),
    filter: str | None = typer.Option(None, "--filter", help="Metadata filter, e.g. \"category = 'sports'\""),  # noqa: A002
    rerank: str | None = typer.Option(None, "--rerank", help=_RERANK_HELP),
    decompose: str | None = typer.Option(None, "--decompose", help=_DECOMPOSE_HELP),
    group_by: str | None = typer.Option(
        None,
        "--group-by",
        help="chunk | document: rank distinct documents, each with its best passages [default: retrieval.group_by]",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print hits as JSON"),
    kb: KbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Rank chunks (or documents, --group-by document) for a query and print them with scores and sources."""
    overrides = {"rerank.method": rerank, "retrieval.decompose": decompose, "retrieval.group_by": group_by}
    with user_errors():
        kbase = open_kb(kb, config, **overrides)
        if kbase.settings.retrieval.group_by == "document":
            results: list[SearchHit] | list[DocumentHit] = kbase.search_documents(
                query, mode=mode, top_k=top_k, filter=filter
            )
        else:
            results = kbase.search(query, mode=mode, top_k=top_k, filter=filter)
    if as_json:
        print_json([r.to_dict() for r in results])
    elif not results:
        out.print("no results")
    else:
        out.print(_documents_table(results) if isinstance(results[0], DocumentHit) else _hits_table(results))


def ask(
    question: str = typer.Argument(..., help="The question"),
    mode: str | None = typer.Option(None, help="bm25 | dense | hybrid"),
    top_k: int | None = typer.Option(None, "--top-k", help="Chunks retrieved for the answer [default: 6]"),
    filter: str | None = typer.Option(None, "--filter", help="Metadata filter"),  # noqa: A002
    generator: str | None = typer.Option(
        None, "--generator", help="extractive | openai | bedrock | transformers [default: generator.backend]"
    ),
    model: str | None = typer.Option(None, "--model", help="openai/bedrock: model name or id"),
    model_path: Path | None = typer.Option(None, "--model-path", help="transformers: local model folder"),
    adapter_path: Path | None = typer.Option(None, "--adapter-path", help="transformers: LoRA adapter folder"),
    base_url: str | None = typer.Option(None, "--base-url", help="openai: base URL of an OpenAI-compatible server"),
    rerank: str | None = typer.Option(None, "--rerank", help=_RERANK_HELP),
    decompose: str | None = typer.Option(None, "--decompose", help=_DECOMPOSE_HELP),
    stream: bool = typer.Option(True, "--stream/--no-stream", help="Print the answer as it is generated"),
    as_json: bool = typer.Option(False, "--json", help="Print the answer as JSON"),
    kb: KbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Answer a question from the indexed documents, citing the chunks used as [n]."""
    overrides = {
        "generator.backend": generator,
        "generator.model": model,
        "generator.model_path": model_path,
        "generator.adapter_path": adapter_path,
        "generator.base_url": base_url,
        "rerank.method": rerank,
        "retrieval.decompose": decompose,
    }
    streamed: list[str] = []

    def on_token(piece: str) -> None:
        streamed.append(piece)
        sys.stdout.write(piece)
        sys.stdout.flush()

    with user_errors():
        answer = open_kb(kb, config, **overrides).ask(
            question, mode=mode, top_k=top_k, filter=filter, on_token=on_token if stream and not as_json else None
        )
    if as_json:
        print_json(answer.to_dict())
        return
    if streamed:
        sys.stdout.write("\n")  # the streamed text is the final answer: the guardrails saw it first
    else:
        out.print(escape(answer.answer), soft_wrap=True)
    for c in answer.citations:
        where = f"  {escape(c.heading)}" if c.heading else ""
        out.print(f"  [dim]\\[{c.n}][/] {escape(c.label)}{where}", soft_wrap=True)
    for d in answer.guardrails:
        err.print(f"[yellow]guardrail[/] {d.guard} ({d.stage}): {d.action}, {escape(d.detail)}")


def reindex(
    embedder: str | None = typer.Option(
        None,
        "--embedder",
        help="A sentence-transformers model folder (e.g. from `groundwork adapt embeddings`) [default: embedder.model]",
    ),
    backend: str | None = typer.Option(
        None, "--backend", help="torch | onnx | onnx-int8 [default: embedder.backend]; onnx-int8 is another model id"
    ),
    kb: KbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Re-embed the knowledge base with another embedding model or backend, as a new index version."""
    with user_errors():
        if embedder is None and backend is None:
            raise ConfigError("reindex: give --embedder (a model folder) and/or --backend (torch, onnx, onnx-int8)")
        kbase = open_kb(kb, config)
        with err.status("re-embedding every chunk"):
            n, v = kbase.reindex(embedder, backend)
    s = kbase.settings.embedder
    out.print(f"re-embedded {n} chunks with {escape(s.model)} ({s.backend}): index version {v.version}")
    out.print(
        f'now set embedder.model = "{escape(s.model)}" and embedder.backend = "{s.backend}" (groundwork.toml, or '
        "GROUNDWORK_EMBEDDER__MODEL / GROUNDWORK_EMBEDDER__BACKEND); `groundwork rollback` restores the previous model"
    )


def rollback(kb: KbOpt = None, config: ConfigOpt = None) -> None:
    """Undo the last `reindex`: restore the previous embedding model's vectors."""
    with user_errors():
        prev = open_kb(kb, config).rollback()
    out.print(f"restored embedding model {escape(str(prev['model_id']))}; set embedder.model back to it")


def versions(as_json: bool = typer.Option(False, "--json"), kb: KbOpt = None, config: ConfigOpt = None) -> None:
    """List index versions: when, what changed, and the size after each."""
    with user_errors():
        kbase = open_kb(kb, config)
        kbase.require_existing()  # a mistyped --kb must not look like an empty knowledge base
        vs = kbase.versions()
    if as_json:
        print_json([v.__dict__ for v in vs])
        return
    table = Table()
    for col in ("version", "time (UTC)", "added", "updated", "deleted", "documents", "chunks", "storage version"):
        table.add_column(col)
    for v in vs:
        table.add_row(
            str(v.version),
            v.created_at,
            str(v.added),
            str(v.updated),
            str(v.deleted),
            str(v.documents),
            str(v.chunks),
            str(v.storage_version),
        )
    out.print(table if vs else "no versions yet: run `groundwork ingest PATH`")


def _parse_summary(p: dict) -> str:
    """The parsing report in a line: "pptx, 8 slides, OCR 40%, 1 warning" ("" when none was recorded)."""
    if not p.get("loader"):
        return ""
    parts = [str(p["loader"]), f"{p.get('units', '')} {p.get('unit', '')}".strip()]
    if p.get("ocr_share"):
        parts.append(f"OCR {p['ocr_share']:.0%}")
    if warnings := [w for w in str(p.get("warnings") or "").split("; ") if w]:
        parts.append(f"{len(warnings)} warning{'s' if len(warnings) > 1 else ''}")
    return ", ".join(x for x in parts if x)


def documents(as_json: bool = typer.Option(False, "--json"), kb: KbOpt = None, config: ConfigOpt = None) -> None:
    """List indexed documents with their chunk counts and parsing report (loader, pages/slides/sheets,
    characters, OCR share, warnings; all of it with --json)."""
    with user_errors():
        kbase = open_kb(kb, config)
        kbase.require_existing()
        docs = kbase.documents()
    if as_json:
        print_json([d.__dict__ for d in docs])
        return
    table = Table()
    for col in ("doc_id", "document", "chunks", "parsing"):
        table.add_column(col, overflow="fold")
    for d in docs:
        table.add_row(
            escape(display(d.doc_id)),
            escape(d.title or document_label(d.doc_id, d.source)),
            str(d.chunks),
            escape(_parse_summary(d.parse)),
        )
    out.print(table)
