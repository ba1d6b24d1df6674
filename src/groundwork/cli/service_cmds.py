"""Commands of the service around the index: API keys, ``serve``, the audit log, ``config show``."""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table

from groundwork.cli.common import ConfigOpt, KbOpt, err, open_kb, out, print_json, settings, user_errors
from groundwork.config import redact_dsn

keys_app = typer.Typer(
    rich_markup_mode=None, no_args_is_help=True, help="Create, list and revoke API keys for `groundwork serve`."
)
audit_app = typer.Typer(rich_markup_mode=None, no_args_is_help=True, help="Read the audit record of answers.")
config_app = typer.Typer(rich_markup_mode=None, no_args_is_help=True, help="Inspect settings.")


def _keystore(kb: str | None, config: object):
    from groundwork.wiring import build_key_store

    return build_key_store(settings(kb, config))


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
    kb: KbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Create a key and print it once: only a salted hash is stored, so it cannot be shown again."""
    with user_errors():
        record, secret = _keystore(kb, config).create(
            name,
            [s.strip() for s in scopes.split(",") if s.strip()],
            [g.strip() for g in (groups or "").split(",") if g.strip()],
            tenant,
        )
    if as_json:
        print_json(record.to_dict() | {"key": secret})
        return
    out.print(
        f"key id {record.key_id} ({escape(record.name)}; scopes {', '.join(record.scopes)}"
        f"{'; groups ' + ', '.join(record.groups) if record.groups else ''}{'; tenant ' + record.tenant if record.tenant else ''})"
    )
    out.print("[bold]Store this key now; it will not be shown again:[/]")
    typer.echo(secret)


@keys_app.command("list")
def keys_list(as_json: bool = typer.Option(False, "--json"), kb: KbOpt = None, config: ConfigOpt = None) -> None:
    """Keys with their scopes, groups, tenant and state (never the keys themselves)."""
    with user_errors():
        records = _keystore(kb, config).list()
    if as_json:
        print_json([r.to_dict() for r in records])
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
def keys_revoke(
    key_id: str = typer.Argument(..., help="The key id (from `keys list`)"),
    kb: KbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Revoke a key; it is refused from the next request on."""
    with user_errors():
        r = _keystore(kb, config).revoke(key_id)
    out.print(f"revoked {r.key_id} ({escape(r.name)}) at {r.revoked_at}")


def serve(
    host: str | None = typer.Option(None, "--host", help="Bind address [default: serve.host, 127.0.0.1]"),
    port: int | None = typer.Option(None, "--port", help="Port [default: serve.port, 8080]"),
    no_auth: bool = typer.Option(
        False, "--no-auth", help="Development only: no API keys, loopback only, every document visible"
    ),
    kb: KbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Run the HTTP API (and web page) under uvicorn."""
    import uvicorn

    from groundwork.serve.app import create_app
    from groundwork.serve.telemetry import configure_logging

    with user_errors():
        s = settings(kb, config, **{"serve.host": host, "serve.port": port})
    bind = s.serve.host
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
    url = f"http://{'[' + bind + ']' if ':' in bind else bind}:{s.serve.port}"
    err.print(f"Groundwork is serving {url}  (web page {url}/, API {url}/v1, OpenAPI {url}/docs)")
    uvicorn.run(
        create_app(s, no_auth=no_auth),
        host=bind,
        port=s.serve.port,
        log_config=None,
        timeout_graceful_shutdown=5,
    )


@audit_app.command("list")
def audit_list(
    limit: int = typer.Option(20, help="How many records, newest first"),
    as_json: bool = typer.Option(False, "--json"),
    kb: KbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Recent answers: time, caller, question, abstained, latency."""
    with user_errors():
        records = open_kb(kb, config).audit.list(limit=limit)
    if as_json:
        print_json(records)
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
def audit_show(
    answer_id: str = typer.Argument(..., help="The answer id (from `ask --json` or `audit list`)"),
    kb: KbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """One audit record in full, as JSON."""
    with user_errors():
        print_json(open_kb(kb, config).audit.get(answer_id))


@config_app.command("show")
def config_show(kb: KbOpt = None, config: ConfigOpt = None) -> None:
    """Print the effective settings (defaults < groundwork.toml < GROUNDWORK_* < flags) as JSON."""
    with user_errors():
        data = settings(kb, config).model_dump(mode="json")
    if data.get("pg_dsn"):
        data["pg_dsn"] = redact_dsn(data["pg_dsn"])  # never print a password
    print_json(data)
