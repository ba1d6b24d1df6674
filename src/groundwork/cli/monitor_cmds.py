"""``groundwork monitor ...``: drift monitoring of the live knowledge base (for cron or a Kubernetes
CronJob); see groundwork.evaluate.monitor and docs/operations.md, "Drift monitoring"."""

from __future__ import annotations

import typer
from rich.table import Table

from groundwork.cli.common import ConfigOpt, KbOpt, open_kb, out, print_json, user_errors

monitor_app = typer.Typer(
    rich_markup_mode=None, no_args_is_help=True, help="Drift monitoring: eval on the live index, traffic drift."
)


@monitor_app.command("run")
def monitor_run(
    baseline: bool = typer.Option(False, "--baseline", help="Store this run as the baseline later runs compare with"),
    as_json: bool = typer.Option(False, "--json"),
    kb: KbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Run the eval set (monitor.eval_set + resolved reviews) against the live index and compare recent
    traffic with the reference window; store the run. Exit 1 when a metric regressed or traffic drifted."""
    from groundwork.evaluate.monitor import run_monitor

    with user_errors():
        k = open_kb(kb, config, **{"audit.enabled": False})  # the monitor's searches are not user answers
        k.require_existing()
        run = run_monitor(k, k.settings.monitor, baseline)
    if as_json:
        print_json(run)
    else:
        _print(run)
    if run["alert"]:
        raise typer.Exit(1)


def _print(run: dict) -> None:
    table = Table(title=f"monitor run {run['run_id']} ({run['created_at']}){' - baseline' if run['baseline'] else ''}")
    for col in ("figure", "now", "baseline / reference"):
        table.add_column(col)
    ev, base = run["eval"] or {}, run["baseline_eval"] or {}
    for m, v in (ev.get("metrics") or {}).items():
        table.add_row(m, f"{v:.4f}", f"{base[m]:.4f}" if m in base else "-")
    t = run["traffic"]
    table.add_row("abstention rate", _f(t.get("abstention_rate")), _f(t.get("abstention_rate_reference")))
    for k in ("top1_psi", "top1_ks_pvalue", "embedding_psi"):
        table.add_row(k, _f(t.get(k)), "")
    out.print(table)
    out.print(f"answers: {t['current_n']} recent, {t['reference_n']} reference; questions: {ev.get('questions', 0)}")
    problems = [f"regressed: {m}" for m in run["eval_regressions"]] + [f"drifted: {k}" for k in run["drift"]]
    out.print("; ".join(problems) if problems else "no regression, no drift")


def _f(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


@monitor_app.command("show")
def monitor_show(
    limit: int = typer.Option(10, "--limit", help="How many runs, newest first"),
    kb: KbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """The stored runs as JSON, newest first."""
    with user_errors():
        print_json(open_kb(kb, config).components.monitor.list(limit))
