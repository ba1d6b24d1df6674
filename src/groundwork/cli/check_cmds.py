"""``groundwork check [--repair]``: find (and fix) what interleaved writers leave in an index.

Exit codes: 0 the index is consistent (after the repair, with ``--repair``); 1 problems found (or
left after a repair); 2 bad input or settings, no index, or the writer lock not had in time.
"""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table

from groundwork.cli.common import ConfigOpt, KbOpt, display, open_kb, out, print_json, user_errors
from groundwork.index.check import CheckReport

_SHOWN = 50  # problems listed in the table; --json lists all

_KIND_WORDS = {
    "duplicate_chunk_id": "duplicate chunk id",
    "orphan_chunks": "orphan chunks",
    "count_mismatch": "count mismatch",
    "statistics": "statistics",
}


def check(
    repair: bool = typer.Option(
        False,
        "--repair",
        help="Fix what is found, under the writer lock: one row per chunk id, the newest version of each "
        "document, statistics recounted, an index version recorded",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON"),
    kb: KbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Check the index: duplicate chunk ids, orphan chunks, count and statistics mismatches."""
    with user_errors():
        kbase = open_kb(kb, config)
        result = kbase.repair() if repair else kbase.check()
    final = result if isinstance(result, CheckReport) else result.after
    if as_json:
        print_json(result.to_dict())
        raise typer.Exit(0 if final.ok else 1)
    if isinstance(result, CheckReport):
        _print_report(result, hint=True)
        raise typer.Exit(0 if final.ok else 1)
    _print_report(result.found)
    if result.version is not None:
        recounted = f", recounted {', '.join(result.recounted)}" if result.recounted else ""
        out.print(
            f"[bold]repaired[/]: removed {result.removed} rows of {len(result.found.affected)} documents"
            f"{escape(recounted)}; index version {result.version}"
        )
        if final.ok:
            out.print("[bold green]consistent[/] after the repair")
        else:
            out.print("[bold red]still inconsistent[/] after the repair:")
            _print_report(final)
    raise typer.Exit(0 if final.ok else 1)


def _print_report(report: CheckReport, hint: bool = False) -> None:
    version = f"index version {report.version}" if report.version is not None else "no index version"
    summary = f"{report.rows} chunks ({report.chunks} distinct ids) of {report.documents} documents, {version}"
    if report.ok:
        out.print(f"[bold green]consistent[/]: {summary}")
        return
    out.print(f"[bold red]{len(report.problems)} problems[/]: {summary}")
    table = Table()
    for col in ("problem", "subject", "detail", "rows"):
        table.add_column(col, overflow="fold")
    for p in report.problems[:_SHOWN]:
        table.add_row(_KIND_WORDS.get(p.kind, p.kind), escape(display(p.subject)), escape(p.detail), str(p.rows))
    out.print(table)
    if len(report.problems) > _SHOWN:
        out.print(f"... and {len(report.problems) - _SHOWN} more (--json lists all)")
    if hint and report.redundant:
        out.print(
            f"`groundwork check --repair` removes {len(report.redundant)} rows of "
            f"{len(report.affected)} documents; a re-ingest of their files repairs them too"
        )
