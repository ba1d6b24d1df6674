"""``groundwork usage``: tokens and cost of answers, summed by key, tenant, profile and day."""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table

from groundwork.cli.common import ConfigOpt, KbOpt, out, print_json, settings, user_errors

_ORDER = ("key_id", "key_name", "tenant", "profile", "day")


def usage_cmd(
    by: str = typer.Option("day,key", "--by", help="Comma-separated groups: key, tenant, profile, day"),
    since: str | None = typer.Option(None, "--since", help="First UTC day, YYYY-MM-DD (inclusive)"),
    until: str | None = typer.Option(None, "--until", help="Last UTC day, YYYY-MM-DD (inclusive)"),
    tenant: str | None = typer.Option(None, "--tenant", help="Only this tenant's answers"),
    as_json: bool = typer.Option(False, "--json"),
    kb: KbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Answers, prompt and completion tokens and cost (USD, from the [pricing] table) per group.
    Reads the usage log (usage.sqlite in the kb folder, or PostgreSQL) without loading any model."""
    from groundwork.wiring import build_usage_log

    groups = [g.strip() for g in by.split(",") if g.strip()]
    with user_errors():
        log = build_usage_log(settings(kb, config))
        rows = log.aggregate(groups, None, (tenant is not None, tenant), since, until)
    if as_json:
        print_json(rows)
        return
    cols = [c for c in _ORDER if rows and c in rows[0]]
    table = Table()
    for col in [*cols, "answers", "cached", "prompt", "completion", "total", "cost (USD)"]:
        table.add_column(col, overflow="fold")
    for r in rows:
        figures = [r["answers"], r["cached"], r["prompt_tokens"], r["completion_tokens"], r["total_tokens"]]
        table.add_row(*(escape(str(r[c] or "-")) for c in cols), *map(str, figures), f"{r['cost_usd']:.4f}")
    out.print(table if rows else "no answers recorded yet")
