"""`groundwork db ...` and `groundwork migrate`: the PostgreSQL schema and moving a knowledge base."""

from __future__ import annotations

import json

import typer

from groundwork.cli.common import ConfigOpt, KbOpt, out, settings, user_errors

db_app = typer.Typer(
    rich_markup_mode=None, no_args_is_help=True, help="The database schema (store = postgres): versioned migrations."
)
_DSN_HELP = "Connection string [default: GROUNDWORK_PG_DSN]"


@db_app.command("migrate")
def db_migrate(
    dsn: str | None = typer.Option(None, "--dsn", help=_DSN_HELP),
    dimension: int | None = typer.Option(
        None, "--dimension", help="Vector size [default: the configured embedding model's]"
    ),
    kb: KbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Create or upgrade the database schema (settings: schema_name); safe to run from every replica."""
    from groundwork.index.embedder import load_embedder
    from groundwork.index.pg_schema import migrate_configured

    with user_errors():
        s = settings(kb, config, pg_dsn=dsn)
        applied, now = migrate_configured(s, dimension or load_embedder(s.embedder, None).dimension)
    out.print(f"applied {applied or 'nothing (up to date)'}; the schema is now at version {now}")


@db_app.command("status")
def db_status(
    dsn: str | None = typer.Option(None, "--dsn", help=_DSN_HELP), kb: KbOpt = None, config: ConfigOpt = None
) -> None:
    """The migrations applied to the schema, as JSON."""
    from groundwork.index.pg_schema import configured_status

    with user_errors():
        applied = configured_status(settings(kb, config, pg_dsn=dsn))
    typer.echo(json.dumps(applied, indent=2))


def migrate_cmd(
    source: str = typer.Option(..., "--from", help="lance://FOLDER or a database URI"),
    target: str = typer.Option(..., "--to", help="lance://FOLDER or a database URI (must be empty)"),
    as_json: bool = typer.Option(False, "--json"),
    kb: KbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Copy a knowledge base between stores (vectors included, no re-embedding), verified by counts
    and checksums. A database side uses the configured schema name."""
    from groundwork.index.migrate import migrate_kb
    from groundwork.wiring import open_store_uri

    with user_errors():
        s = settings(kb, config)
        src = open_store_uri(source, s)
        model = src.model_info()
        dst = open_store_uri(target, s, model["dimension"] if model else None)
        report = migrate_kb(src, dst)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        out.print(
            f"migrated {report.chunks} chunks of {report.documents} documents and {report.versions} versions "
            f"in {report.seconds:.1f} s; checksum {report.target_checksum[:16]} verified"
        )
