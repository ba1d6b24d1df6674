"""``groundwork profiles ...`` and ``groundwork experiment ...``: named configurations and the
experiments and canaries between them (see docs/operations.md, "Profiles, experiments and canaries")."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from groundwork.cli.common import ConfigOpt, KbOpt, out, print_json, settings, user_errors
from groundwork.config import Settings
from groundwork.errors import RequestError

profiles_app = typer.Typer(
    rich_markup_mode=None, no_args_is_help=True, help="Named, versioned configurations (retrieval, answer, prompt)."
)
experiment_app = typer.Typer(
    rich_markup_mode=None, no_args_is_help=True, help="A/B experiments and canaries between two profiles."
)
MAX_PROFILE_FILE = 64 * 1024
_JSON = typer.Option(False, "--json", help="Print JSON")


def _stores(s: Settings):
    from groundwork.wiring import build_experiment_state

    return build_experiment_state(s)


def _read_profile(path: Path) -> dict[str, Any]:
    """The TOML file's tables. Raises RequestError naming the file when it is missing, large or invalid."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_PROFILE_FILE + 1)
    except OSError as exc:
        raise RequestError(f"{path}: cannot read it ({exc.strerror})") from None
    if len(data) > MAX_PROFILE_FILE:
        raise RequestError(f"{path}: over {MAX_PROFILE_FILE // 1024} KB; a profile holds a few settings")
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RequestError(f"{path}: not valid TOML ({exc})") from None


@profiles_app.command("create")
def profiles_create(
    name: str = typer.Argument(..., help="Profile name; an existing name gets its next version"),
    from_file: Path = typer.Option(..., "--from-file", help="TOML with [retrieval], [answer], [generator] tables"),
    as_json: bool = _JSON,
    kb: KbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Store a profile version; an unknown or invalid setting is refused with its name."""
    with user_errors():
        profiles, _ = _stores(settings(kb, config))
        p = profiles.create(name, _read_profile(from_file), "cli")
    if as_json:
        print_json(p.to_dict())
        return
    out.print(f"created profile {p.ref}")


@profiles_app.command("list")
def profiles_list(as_json: bool = _JSON, kb: KbOpt = None, config: ConfigOpt = None) -> None:
    """Every profile version; the default one is marked."""
    with user_errors():
        profiles, _ = _stores(settings(kb, config))
        rows, default = profiles.list(), profiles.default()
    if as_json:
        print_json({"default": default.ref if default else None, "profiles": [p.to_dict() for p in rows]})
        return
    table = Table()
    for col in ("profile", "created", "by", "settings", "default"):
        table.add_column(col, overflow="fold")
    for p in rows:
        keys = ", ".join(f"{s}.{k}" for s, vals in p.override.items() for k in vals)
        is_default = "yes" if default and default.ref == p.ref else ""
        table.add_row(p.ref, p.created_at, escape(p.created_by), keys, is_default)
    out.print(table if rows else "no profiles yet: `groundwork profiles create NAME --from-file profile.toml`")


@profiles_app.command("show")
def profiles_show(
    ref: str = typer.Argument(..., help="NAME (newest version) or NAME@VERSION"),
    kb: KbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """One profile version as JSON."""
    with user_errors():
        profiles, _ = _stores(settings(kb, config))
        print_json(profiles.get(ref).to_dict())


@experiment_app.command("start")
def experiment_start(
    control: str = typer.Option(..., "--control", help="Control profile: NAME or NAME@VERSION"),
    treatment: str = typer.Option(..., "--treatment", help="Treatment profile: NAME or NAME@VERSION"),
    share: float = typer.Option(..., "--share", help="Percentage of API keys routed to the treatment (0-100]"),
    canary: bool = typer.Option(False, "--canary", help="Roll back automatically when a threshold is crossed"),
    max_abstention_rate: float | None = typer.Option(None, "--max-abstention-rate", help="Canary: rate 0-1"),
    min_grounding: float | None = typer.Option(None, "--min-grounding", help="Canary: grounding pass rate 0-1"),
    max_error_rate: float | None = typer.Option(None, "--max-error-rate", help="Canary: rate 0-1"),
    min_answers: int = typer.Option(50, "--min-answers", help="Canary: treatment answers before judging"),
    as_json: bool = _JSON,
    kb: KbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Start an experiment (one at a time); with --canary and thresholds, a canary."""
    from groundwork.state.experiment_control import start_experiment
    from groundwork.state.experiments import CanaryThresholds

    with user_errors():
        s = settings(kb, config)
        profiles, experiments = _stores(s)
        guard = CanaryThresholds(max_abstention_rate, min_grounding, max_error_rate, min_answers) if canary else None
        exp = start_experiment(profiles, experiments, control, treatment, share, guard, "cli", s)
    if as_json:
        print_json(exp.to_dict())
        return
    kind = "canary" if guard else "experiment"
    out.print(
        f"started {kind} {exp.experiment_id}: {exp.share:g}% of keys -> {exp.treatment}, the rest -> {exp.control}"
    )


@experiment_app.command("list")
def experiment_list(as_json: bool = _JSON, kb: KbOpt = None, config: ConfigOpt = None) -> None:
    """Every experiment, newest first."""
    with user_errors():
        _, experiments = _stores(settings(kb, config))
        rows = experiments.list()
    if as_json:
        print_json([e.to_dict() for e in rows])
        return
    table = Table()
    for col in ("id", "control", "treatment", "share %", "canary", "status", "started", "ended by"):
        table.add_column(col, overflow="fold")
    for e in rows:
        table.add_row(
            e.experiment_id,
            e.control,
            e.treatment,
            f"{e.share:g}",
            "yes" if e.canary else "",
            e.status,
            e.created_at,
            escape(e.ended_by or ""),
        )
    out.print(table if rows else "no experiments yet")


def _gate(s: Settings, refs: dict[str, str], baseline: Path, cache: Path | None) -> dict[str, Any]:
    """Each arm's profile through the offline gate (``groundwork eval gate``) on the baseline's eval set."""
    from groundwork.cli.eval_cmds import measure
    from groundwork.evaluate.gate import compare, read_baseline
    from groundwork.state.profiles import apply_profile

    profiles, _ = _stores(s)
    base = read_baseline(baseline)
    result: dict[str, Any] = {}
    for arm, ref in refs.items():
        arm_settings = apply_profile(s, profiles.get(ref).override)
        _, current = measure(baseline.parent / base["eval_set"], base.get("mode"), arm_settings, cache)
        checks = compare(base, current)
        result[arm] = {
            "profile": ref,
            "passed": all(c.passed for c in checks),
            "failed": [c.metric for c in checks if not c.passed],
            "metrics": {c.metric: c.current for c in checks},
        }
    return result


@experiment_app.command("status")
def experiment_status_cmd(
    experiment_id: str | None = typer.Argument(None, help="Experiment id [default: the running one]"),
    with_gate: bool = typer.Option(False, "--with-gate", help="Also run each arm's profile through the eval gate"),
    baseline: Path = typer.Option(Path("eval/baseline.json"), "--baseline", help="Gate baseline (with --with-gate)"),
    cache: Path | None = typer.Option(None, "--cache", help="Eval index cache folder (with --with-gate)"),
    as_json: bool = _JSON,
    kb: KbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Per arm: answers, abstention, helpful and grounding rates, errors, latency p50/p95, tokens and
    cost, with p-values (two-proportion z-test; Mann-Whitney U for latency), and the events."""
    from groundwork.state.experiment_control import experiment_status
    from groundwork.wiring import build_state_audit

    with user_errors():
        s = settings(kb, config)
        _, experiments = _stores(s)
        status = experiment_status(experiments, build_state_audit(s), experiment_id)
        exp = status["experiment"]
        if with_gate:
            refs = {"control": exp["control"], "treatment": exp["treatment"]}
            status["gate"] = _gate(s, refs, baseline, cache)
    if as_json:
        print_json(status)
        return
    _print_status(status)


def _pct(fig: dict[str, Any]) -> str:
    return "-" if fig["rate"] is None else f"{fig['rate']:.1%} ({fig['count']}/{fig['of']})"


def _p(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _print_status(status: dict[str, Any]) -> None:
    exp, arms, pv = status["experiment"], status["arms"], status["p_values"]
    out.print(
        f"{exp['experiment_id']} ({exp['status']}): {exp['share']:g}% -> {exp['treatment']}, rest -> {exp['control']}"
    )
    table = Table()
    for col in ("figure", f"control {exp['control']}", f"treatment {exp['treatment']}", "p-value"):
        table.add_column(col, overflow="fold")
    c, t = arms["control"], arms["treatment"]
    table.add_row("answers", str(c["answers"]), str(t["answers"]), "")
    table.add_row("API keys", str(c["keys"]), str(t["keys"]), "")
    for name in ("abstention", "helpful", "grounding", "errors"):
        table.add_row(f"{name} rate", _pct(c[name]), _pct(t[name]), _p(pv[name]))
    for q in ("p50", "p95"):
        table.add_row(
            f"latency {q} (ms)",
            str(c["latency_ms"][q]),
            str(t["latency_ms"][q]),
            _p(pv["latency_ms"]) if q == "p50" else "",
        )
    table.add_row("tokens / cost", str(c["tokens"]), str(t["tokens"]), "")
    if "gate" in status:
        g = status["gate"]
        table.add_row(
            "offline gate",
            *(("passed" if g[a]["passed"] else "FAILED " + ",".join(g[a]["failed"])) for a in ("control", "treatment")),
            "",
        )
    out.print(table)
    for e in status["events"]:
        out.print(f"{e['created_at']}  {e['action']}  by {escape(e['actor'])}: {escape(e['reason'])}")


def _end(experiment_id: str, outcome: str, reason: str, kb: str | None, config: Path | None) -> None:
    from groundwork.state.experiment_control import finish
    from groundwork.wiring import build_state_audit

    with user_errors():
        s = settings(kb, config)
        profiles, experiments = _stores(s)
        exp = finish(profiles, experiments, build_state_audit(s), experiment_id, outcome, "cli", reason or outcome)
    default = exp.treatment if outcome == "promoted" else exp.control
    out.print(f"experiment {exp.experiment_id} {outcome}; the default profile is now {default}")


@experiment_app.command("promote")
def experiment_promote(
    experiment_id: str = typer.Argument(..., help="Experiment id"),
    reason: str = typer.Option("", "--reason", help="Recorded with the event"),
    kb: KbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """End the experiment; its treatment becomes the default profile for all traffic."""
    _end(experiment_id, "promoted", reason, kb, config)


@experiment_app.command("stop")
def experiment_stop(
    experiment_id: str = typer.Argument(..., help="Experiment id"),
    reason: str = typer.Option("", "--reason", help="Recorded with the event"),
    kb: KbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """End the experiment; all traffic returns to its control (the default profile)."""
    _end(experiment_id, "stopped", reason, kb, config)
