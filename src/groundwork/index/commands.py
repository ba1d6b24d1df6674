"""`groundwork db ...` and `groundwork migrate`: the PostgreSQL schema and moving a knowledge base."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from groundwork.config import Settings, load_settings
from groundwork.errors import ConfigError, GroundworkError

db_app = typer.Typer(no_args_is_help=True, help="PostgreSQL schema: versioned migrations.")
out = Console(soft_wrap=True)
err = Console(stderr=True)


def _fail(exc: Exception) -> None:
    err.print(f"[bold red]error:[/] {escape(str(exc))}")
    raise typer.Exit(2)


def _settings(ctx: typer.Context, dsn: str | None) -> Settings:
    parent = ctx.find_root().params
    kb = parent.get("kb")
    over: dict = ({"index.lance_uri": kb} if "://" in kb else {"kb": Path(kb)}) if kb else {}
    if dsn:
        over |= {"pg_dsn": dsn}
    return load_settings(parent.get("config"), **over)


@db_app.command("migrate")
def db_migrate(
    ctx: typer.Context,
    dsn: str | None = typer.Option(None, "--dsn", help="Connection string [default: GROUNDWORK_PG_DSN]"),
    dimension: int | None = typer.Option(
        None, "--dimension", help="Vector size [default: the configured embedding model's]"
    ),
) -> None:
    """Create or upgrade the PostgreSQL schema (postgres.schema_name); safe to run from every replica."""
    from groundwork.index.pg_schema import applied_migrations, migrate

    try:
        s = _settings(ctx, dsn)
        if not s.pg_dsn:
            raise ConfigError("no database: pass --dsn or set GROUNDWORK_PG_DSN")
        if dimension is None:
            from groundwork.index.embedder import load_embedder

            dimension = load_embedder(s.embedder, None).dimension
        applied = migrate(s.pg_dsn, s.postgres.schema_name, dimension, s.postgres.fts_language)
        state = applied_migrations(s.pg_dsn, s.postgres.schema_name)
    except GroundworkError as exc:
        _fail(exc)
    out.print(
        f"schema '{s.postgres.schema_name}': applied {applied or 'nothing (up to date)'}; now at version {state[-1]['version']}"
    )


@db_app.command("status")
def db_status(ctx: typer.Context, dsn: str | None = typer.Option(None, "--dsn")) -> None:
    """The migrations applied to the schema, as JSON."""
    from groundwork.index.pg_schema import applied_migrations

    try:
        s = _settings(ctx, dsn)
        typer.echo(json.dumps(applied_migrations(s.pg_dsn or "", s.postgres.schema_name), indent=2))
    except Exception as exc:
        _fail(exc)


def _open(uri: str, settings: Settings, dimension: int | None):
    if uri.startswith("lance://"):
        from groundwork.index.lance import LanceStore

        return LanceStore(Path(uri[len("lance://") :]), settings.index)
    if uri.startswith(("postgres://", "postgresql://")):
        from groundwork.index.postgres import PgStore

        if dimension is None:
            raise ConfigError("the source store has no model recorded; nothing to migrate")
        pg = settings.postgres
        return PgStore(uri, dimension, settings.index, pg.schema_name, pg.fts_language, pg.pool_size)
    raise ConfigError(f"{uri!r}: write lance://FOLDER or postgres://user@host:port/db")


def migrate_cmd(
    ctx: typer.Context,
    source: str = typer.Option(..., "--from", help="lance://FOLDER or postgres://..."),
    target: str = typer.Option(..., "--to", help="lance://FOLDER or postgres://... (must be empty)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Copy a knowledge base between stores (vectors included, no re-embedding), verified by counts
    and checksums. PostgreSQL uses postgres.schema_name on either side."""
    from groundwork.index.migrate import migrate_kb

    try:
        s = _settings(ctx, None)
        src = _open(source, s, None if source.startswith("lance://") else _pg_dimension(source, s))
        meta = src.meta
        model = meta.get("model", meta)  # PostgreSQL keeps it under "model", LanceDB at the top
        dst = _open(target, s, model.get("dimension"))
        report = migrate_kb(src, dst)
    except GroundworkError as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        out.print(
            f"migrated {report.chunks} chunks of {report.documents} documents and {report.versions} versions "
            f"in {report.seconds:.1f} s; checksum {report.target_checksum[:16]} verified"
        )


def _pg_dimension(dsn: str, s: Settings) -> int:
    import psycopg

    from groundwork.errors import StoreError

    try:
        with psycopg.connect(dsn) as conn:
            row = conn.execute(f"SELECT value FROM {s.postgres.schema_name}.gw_meta WHERE key = 'schema'").fetchone()
    except psycopg.Error as exc:
        raise StoreError(f"cannot read the source schema '{s.postgres.schema_name}': {str(exc).strip()}") from None
    return int(row[0]["dimension"])
