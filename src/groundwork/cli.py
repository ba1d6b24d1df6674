"""The ``groundwork`` command line. Each command is a thin layer over :class:`KnowledgeBase`.

Exit codes: 0 success; 1 ``ingest`` finished but some files failed; 2 bad input or settings.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from groundwork.adapt.commands import adapt_app, decide_cmd
from groundwork.config import load_settings
from groundwork.errors import GroundworkError
from groundwork.evaluate.commands import eval_app
from groundwork.index.commands import db_app, migrate_cmd
from groundwork.kb import KnowledgeBase
from groundwork.types import SearchHit

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Groundwork: answers grounded in your own documents."
)
config_app = typer.Typer(no_args_is_help=True, help="Inspect settings.")
app.add_typer(config_app, name="config")
app.add_typer(eval_app, name="eval")
app.add_typer(adapt_app, name="adapt")
app.add_typer(db_app, name="db")
app.command("migrate")(migrate_cmd)
app.command("decide")(decide_cmd)
out = Console(soft_wrap=True)
err = Console(stderr=True)


class _State:
    kb: str | None = None
    config: Path | None = None


def _fail(exc: Exception) -> None:
    err.print(f"[bold red]error:[/] {escape(str(exc))}")
    raise typer.Exit(2)


def _kb_over() -> dict[str, Any]:
    """``--kb FOLDER``, or ``--kb s3://bucket/path``: the LanceDB tables in an object store (index.lance_uri),
    with the state files (keys, audit, embedding cache) in the default local folder."""
    if not _State.kb:
        return {}
    return {"index.lance_uri": _State.kb} if "://" in _State.kb else {"kb": Path(_State.kb)}


def _kb(**overrides: Any) -> KnowledgeBase:
    settings = load_settings(_State.config, **_kb_over(), **overrides)
    return KnowledgeBase(settings=settings)


def _json(data: Any) -> None:
    """Machine-readable output: plain JSON on stdout, never wrapped or coloured."""
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _display(source: str) -> str:
    """Paths under the working directory are shown relative to it."""
    try:
        return (
            os.path.relpath(source)
            if Path(source).is_absolute() and Path(source).is_relative_to(Path.cwd())
            else source
        )
    except ValueError:
        return source


@app.callback()
def main(
    kb: str | None = typer.Option(
        None,
        "--kb",
        help="Knowledge-base folder, or s3://bucket/path for the index in an object store [default: ./.groundwork or $GROUNDWORK_KB]",
    ),
    config: Path | None = typer.Option(None, "--config", help="Settings file [default: ./groundwork.toml if present]"),
) -> None:
    _State.kb, _State.config = kb, config


@app.command()
def ingest(
    paths: list[str] = typer.Argument(..., help="Files, folders and s3://bucket/prefix sources to ingest"),
    sync: bool = typer.Option(
        True, "--sync/--no-sync", help="Delete documents that vanished from the given folders/record files"
    ),
    text_field: str | None = typer.Option(None, help="JSON/JSONL: field holding the text"),
    id_field: str | None = typer.Option(None, help="JSON/JSONL: field holding a unique, stable id"),
    metadata_fields: str | None = typer.Option(
        None, help="JSON/JSONL: comma-separated fields kept as filterable metadata"
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
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON"),
) -> None:
    """Index files and folders (.md .txt .html .pdf .docx .json .jsonl); re-running syncs changes."""
    try:
        kbase = _kb(**{"chunking.strategy": chunker, "chunking.chunk_tokens": chunk_tokens})
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
                bar.update(task, total=total, completed=done, description=escape(_display(path)[-50:]) or "finishing")

            groups = [g.strip() for g in (allowed_groups or "").split(",") if g.strip()]
            report = kbase.ingest(
                paths,
                sync=sync,
                progress=progress,
                text_field=text_field,
                id_field=id_field,
                metadata_fields=fields,
                tenant=tenant,
                allowed_groups=groups,
                engine=engine,
                ray_address=ray_address,
            )
    except GroundworkError as exc:
        _fail(exc)
    if as_json:
        _json(report.to_dict())
    else:
        out.print(
            f"[bold]ingest[/]: {report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
            f"{report.deleted} deleted, {len(report.failed)} failed  "
            f"({report.chunks_written} chunks written, {report.chunks_embedded} embedded, {report.seconds:.1f} s)"
        )
        if report.version:
            out.print(f"index version {report.version}")
        for f in report.skipped:
            out.print(f"[yellow]skipped[/] {escape(_display(f.path))}: {escape(f.reason)}")
        for f in report.failed:
            out.print(f"[red]failed[/]  {escape(_display(f.path))}: {escape(f.reason)}")
    raise typer.Exit(1 if report.failed else 0)


def _hits_table(hits: list[SearchHit]) -> Table:
    table = Table(show_lines=False)
    for col in ("#", "score", "source", "where", "text"):
        table.add_column(col, overflow="fold")
    for h in hits:
        c = h.chunk
        where = " > ".join(x for x in (c.heading, f"p. {c.page}" if c.page else "") if x)
        snippet = " ".join(c.text.split())
        table.add_row(str(h.rank), f"{h.score:.4f}", escape(_display(c.source)), escape(where), escape(snippet[:160]))
    return table


_RERANK_HELP = "none | mmr | cross-encoder | llm [default: rerank.method]"
_DECOMPOSE_HELP = "off | heuristic | llm: split multi-hop questions into sub-questions [default: retrieval.decompose]"


@app.command()
def search(
    query: str = typer.Argument(..., help="What to look for"),
    mode: str | None = typer.Option(None, help="bm25 | dense | hybrid [default: hybrid]"),
    top_k: int | None = typer.Option(None, "--top-k", help="How many chunks [default: 10]"),
    filter: str | None = typer.Option(None, "--filter", help="Metadata filter, e.g. \"category = 'sports'\""),  # noqa: A002
    rerank: str | None = typer.Option(None, "--rerank", help=_RERANK_HELP),
    decompose: str | None = typer.Option(None, "--decompose", help=_DECOMPOSE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print hits as JSON"),
) -> None:
    """Rank chunks for a query and print them with scores and sources."""
    try:
        hits = _kb(**{"rerank.method": rerank, "retrieval.decompose": decompose}).search(
            query, mode=mode, top_k=top_k, filter=filter
        )
    except (GroundworkError, ValueError) as exc:
        _fail(exc)
    if as_json:
        _json([h.to_dict() for h in hits])
    elif not hits:
        out.print("no results")
    else:
        out.print(_hits_table(hits))


@app.command()
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

    try:
        answer = _kb(**overrides).ask(
            question, mode=mode, top_k=top_k, filter=filter, on_token=on_token if stream and not as_json else None
        )
    except (GroundworkError, ValueError) as exc:
        _fail(exc)
    if as_json:
        _json(answer.to_dict())
        return
    if streamed:
        sys.stdout.write("\n")
        if "".join(streamed).strip() != answer.answer.strip():  # guardrails changed the text (masking, block)
            out.print("[dim]after guardrails:[/] " + escape(answer.answer), soft_wrap=True)
    else:
        out.print(escape(answer.answer), soft_wrap=True)
    for c in answer.citations:
        where = f"  {escape(c.heading)}" if c.heading else ""
        out.print(
            f"  [dim]\\[{c.n}][/] {escape(_display(c.source))}{where}  [dim](chunk {escape(c.chunk_id.rsplit('::', 1)[-1])})[/]",
            soft_wrap=True,
        )
    for d in answer.guardrails:
        err.print(f"[yellow]guardrail[/] {d.guard} ({d.stage}): {d.action}, {escape(d.detail)}")


@app.command()
def reindex(
    embedder: Path = typer.Option(
        ..., "--embedder", help="A sentence-transformers model folder (e.g. from `groundwork adapt embeddings`)"
    ),
) -> None:
    """Re-embed the knowledge base with another embedding model, as a new index version."""
    try:
        kbase = _kb()
        with err.status("re-embedding every chunk"):
            n, v = kbase.reindex(str(embedder))
    except GroundworkError as exc:
        _fail(exc)
    out.print(f"re-embedded {n} chunks with {escape(str(embedder))}: index version {v.version}")
    out.print(
        f'now set embedder.model = "{escape(str(embedder))}" (groundwork.toml or GROUNDWORK_EMBEDDER__MODEL); '
        "`groundwork rollback` restores the previous model"
    )


@app.command()
def rollback() -> None:
    """Undo the last `reindex`: restore the previous embedding model's vectors."""
    try:
        prev = _kb().rollback()
    except GroundworkError as exc:
        _fail(exc)
    out.print(f"restored embedding model {escape(str(prev['model_id']))}; set embedder.model back to it")


@app.command()
def versions(as_json: bool = typer.Option(False, "--json")) -> None:
    """List index versions: when, what changed, and the size after each."""
    try:
        vs = _kb().versions()
    except GroundworkError as exc:
        _fail(exc)
    if as_json:
        _json([v.__dict__ for v in vs])
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


@app.command()
def documents(as_json: bool = typer.Option(False, "--json")) -> None:
    """List indexed documents with their chunk counts."""
    try:
        docs = _kb().documents()
    except GroundworkError as exc:
        _fail(exc)
    if as_json:
        _json([d.__dict__ for d in docs])
        return
    table = Table()
    for col in ("doc_id", "title", "chunks"):
        table.add_column(col, overflow="fold")
    for d in docs:
        table.add_row(escape(_display(d.doc_id)), escape(d.title), str(d.chunks))
    out.print(table)


keys_app = typer.Typer(no_args_is_help=True, help="Create, list and revoke API keys for `groundwork serve`.")
app.add_typer(keys_app, name="keys")


def _keystore():
    from groundwork.serve.keys import open_keys

    return open_keys(load_settings(_State.config, **_kb_over()))


@keys_app.command("create")
def keys_create(
    name: str = typer.Option(..., "--name", help="Who or what uses the key (shown in audit records)"),
    scopes: str = typer.Option("query", "--scopes", help="Comma-separated: query, ingest, admin"),
    groups: str | None = typer.Option(
        None,
        "--groups",
        help="Comma-separated groups: documents restricted to groups are visible only to keys sharing one",
    ),
    tenant: str | None = typer.Option(None, "--tenant", help="The key sees only this tenant's documents"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Create a key and print it once: only a salted hash is stored, so it cannot be shown again."""
    from groundwork.serve.keys import ApiKeyError

    try:
        record, secret = _keystore().create(
            name,
            [s.strip() for s in scopes.split(",") if s.strip()],
            [g.strip() for g in (groups or "").split(",") if g.strip()],
            tenant,
        )
    except (ApiKeyError, GroundworkError) as exc:
        _fail(exc)
    if as_json:
        _json(record.to_dict() | {"key": secret})
        return
    out.print(
        f"key id {record.key_id} ({escape(record.name)}; scopes {', '.join(record.scopes)}"
        f"{'; groups ' + ', '.join(record.groups) if record.groups else ''}{'; tenant ' + record.tenant if record.tenant else ''})"
    )
    out.print("[bold]Store this key now; it will not be shown again:[/]")
    typer.echo(secret)


@keys_app.command("list")
def keys_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """Keys with their scopes, groups, tenant and state (never the keys themselves)."""
    records = _keystore().list()
    if as_json:
        _json([r.to_dict() for r in records])
        return
    table = Table()
    for col in ("key id", "name", "scopes", "groups", "tenant", "created", "revoked"):
        table.add_column(col)
    for r in records:
        table.add_row(
            r.key_id,
            escape(r.name),
            ",".join(r.scopes),
            ",".join(r.groups),
            r.tenant or "",
            r.created_at,
            r.revoked_at or "",
        )
    out.print(table if records else "no keys yet: `groundwork keys create --name NAME --scopes query`")


@keys_app.command("revoke")
def keys_revoke(key_id: str = typer.Argument(..., help="The key id (from `keys list`)")) -> None:
    """Revoke a key; it is refused from the next request on."""
    from groundwork.serve.keys import ApiKeyError

    try:
        r = _keystore().revoke(key_id)
    except ApiKeyError as exc:
        _fail(exc)
    out.print(f"revoked {r.key_id} ({escape(r.name)}) at {r.revoked_at}")


@app.command()
def serve(
    host: str | None = typer.Option(None, "--host", help="Bind address [default: serve.host, 127.0.0.1]"),
    port: int | None = typer.Option(None, "--port", help="Port [default: serve.port, 8080]"),
    no_auth: bool = typer.Option(
        False, "--no-auth", help="Development only: no API keys, loopback only, every document visible"
    ),
) -> None:
    """Run the HTTP API (and web page) under uvicorn."""
    import uvicorn

    from groundwork.serve.app import create_app
    from groundwork.serve.telemetry import configure_logging

    try:
        settings = load_settings(_State.config, **_kb_over(), **{"serve.host": host, "serve.port": port})
    except GroundworkError as exc:
        _fail(exc)
    bind = settings.serve.host
    if no_auth:
        if bind not in ("127.0.0.1", "localhost", "::1"):
            err.print(
                f"[bold red]--no-auth binds to loopback only[/]: refusing host {escape(bind)}; drop --no-auth and create keys instead"
            )
            raise typer.Exit(2)
        err.print(
            "[bold red]"
            + "!" * 78
            + "\nWARNING: --no-auth: NO API KEYS ARE CHECKED. Every caller sees every document.\n"
            "Development only; bound to loopback.\n" + "!" * 78 + "[/]"
        )
    configure_logging()
    uvicorn.run(
        create_app(settings, no_auth=no_auth),
        host=bind,
        port=settings.serve.port,
        log_config=None,
        timeout_graceful_shutdown=5,
    )


audit_app = typer.Typer(no_args_is_help=True, help="Read the audit record of answers.")
app.add_typer(audit_app, name="audit")


@audit_app.command("list")
def audit_list(
    limit: int = typer.Option(20, help="How many records, newest first"), as_json: bool = typer.Option(False, "--json")
) -> None:
    """Recent answers: time, caller, question, abstained, latency."""
    try:
        records = _kb().audit.list(limit=limit)
    except GroundworkError as exc:
        _fail(exc)
    if as_json:
        _json(records)
        return
    table = Table()
    for col in ("answer_id", "time (UTC)", "caller", "question", "abstained", "guardrails", "ms"):
        table.add_column(col, overflow="fold")
    for r in records:
        table.add_row(
            r["answer_id"],
            r["created_at"],
            escape(r["caller"]),
            escape(r["question"][:80]),
            str(r["abstained"]),
            ", ".join(f"{g['guard']}:{g['action']}" for g in r["guardrails"]),
            f"{r['latency_ms'].get('total', 0):.0f}",
        )
    out.print(table if records else "no answers recorded yet")


@audit_app.command("show")
def audit_show(answer_id: str = typer.Argument(..., help="The answer id (from `ask --json` or `audit list`)")) -> None:
    """One audit record in full, as JSON."""
    try:
        _json(_kb().audit.get(answer_id))
    except GroundworkError as exc:
        _fail(exc)


@config_app.command("show")
def config_show() -> None:
    """Print the effective settings (defaults < groundwork.toml < GROUNDWORK_* < flags) as JSON."""
    try:
        settings = load_settings(_State.config, **_kb_over())
    except GroundworkError as exc:
        _fail(exc)
    data = settings.model_dump(mode="json")
    if data.get("pg_dsn"):
        from groundwork.index.pg_schema import _redact

        data["pg_dsn"] = _redact(data["pg_dsn"])  # never print a password
    _json(data)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
