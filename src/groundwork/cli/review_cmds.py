"""``groundwork reviews ...``: the review queue from the command line (list, show, export as an eval set).

Resolving needs the reviewer's key (its tenant and groups decide what the new document may be), so it
is done through the API or the web page's Review tab, not here."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from groundwork.cli.common import ConfigOpt, KbOpt, out, print_json, settings, user_errors

reviews_app = typer.Typer(
    rich_markup_mode=None, no_args_is_help=True, help="The review queue: answers marked not helpful or poorly grounded."
)


def _queue(kb: str | None, config: Path | None):
    from groundwork.wiring import build_review_queue

    return build_review_queue(settings(kb, config))


@reviews_app.command("list")
def reviews_list(
    status: str = typer.Option("open", "--status", help="open | resolved | dismissed | all"),
    limit: int = typer.Option(20, "--limit", help="How many items, newest first"),
    as_json: bool = typer.Option(False, "--json"),
    kb: KbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Review items: id, time, kind, status, tenant, question."""
    with user_errors():
        items = _queue(kb, config).list(None if status == "all" else status, limit)
    if as_json:
        print_json([i.to_dict() for i in items])
        return
    table = Table()
    for col in ("review_id", "time (UTC)", "kind", "status", "tenant", "question"):
        table.add_column(col, overflow="fold")
    for i in items:
        table.add_row(i.review_id, i.created_at, i.kind, i.status, escape(i.tenant or "-"), escape(i.question[:80]))
    out.print(table if items else f"no {status} reviews")


@reviews_app.command("show")
def reviews_show(review_id: str = typer.Argument(...), kb: KbOpt = None, config: ConfigOpt = None) -> None:
    """One review item as JSON (exit 2 for an unknown id)."""
    with user_errors():
        print_json(_queue(kb, config).get(review_id).to_dict())


@reviews_app.command("export")
def reviews_export(
    out_path: Path = typer.Option(..., "--out", help="Eval set to write (JSONL), e.g. eval/reviewed.jsonl"),
    kb: KbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Write every resolved review as a live eval set ({"live": true} first), replacing the file at once:
    `groundwork eval retrieval|answers --eval-set FILE` and `eval gate` then run it against --kb."""
    from groundwork.evaluate.reviewed import reviewed_rows, write_eval_set

    with user_errors():
        rows = reviewed_rows(_queue(kb, config))
        write_eval_set(out_path, rows)
    out.print(f"wrote {len(rows)} reviewed questions to {out_path}")
