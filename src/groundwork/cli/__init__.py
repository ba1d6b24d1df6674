"""The ``groundwork`` command line: each command is a thin layer over ``KnowledgeBase`` (or the
service state), and all of them build settings one way (``groundwork.cli.common.settings``).

Exit codes: 0 success; 1 ``ingest`` finished but some files failed, the eval gate failed, or
``check`` found problems; 2 bad input or settings.

Warnings of the ``groundwork`` loggers (e.g. "waiting for another writer (ingest) to finish...")
are printed on stderr; ``serve`` replaces this with its JSON log lines.
"""

from __future__ import annotations

import logging
from pathlib import Path

import typer
from rich.markup import escape

from groundwork.cli import (
    adapt_cmds,
    agent_cmds,
    check_cmds,
    db_cmds,
    eval_cmds,
    experiment_cmds,
    kb_cmds,
    monitor_cmds,
    review_cmds,
    service_cmds,
    tune_cmds,
    usage_cmds,
)
from groundwork.cli.common import CONFIG_HELP, KB_HELP, err, set_global


class _StderrWarnings(logging.Handler):
    """Warnings of the library (a writer waiting for the writer lock) as plain lines on stderr."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        err.print(f"[yellow]{escape(record.getMessage())}[/]")


def _print_warnings() -> None:
    logger = logging.getLogger("groundwork")
    if not any(isinstance(h, _StderrWarnings) for h in logger.handlers):  # once per process (tests invoke often)
        logger.addHandler(_StderrWarnings())


app = typer.Typer(
    rich_markup_mode=None,
    add_completion=False,
    no_args_is_help=True,
    help="Groundwork: answers grounded in your own documents.",
)


@app.callback()
def main(
    kb: str | None = typer.Option(None, "--kb", help=KB_HELP, show_default=False),
    config: Path | None = typer.Option(None, "--config", help=CONFIG_HELP, show_default=False),
) -> None:
    set_global(kb, config)
    _print_warnings()


for command in (kb_cmds.ingest, kb_cmds.search, kb_cmds.ask, kb_cmds.reindex, kb_cmds.rollback):
    app.command()(command)
for command in (kb_cmds.versions, kb_cmds.documents, check_cmds.check, service_cmds.serve):
    app.command()(command)
app.command("migrate")(db_cmds.migrate_cmd)
app.command("mcp")(agent_cmds.mcp)
app.command("agent")(agent_cmds.agent)
app.command("decide")(adapt_cmds.decide_cmd)
app.command("usage")(usage_cmds.usage_cmd)
app.command("tune")(tune_cmds.tune_cmd)
app.add_typer(service_cmds.keys_app, name="keys")
app.add_typer(service_cmds.audit_app, name="audit")
app.add_typer(service_cmds.config_app, name="config")
app.add_typer(eval_cmds.eval_app, name="eval")
app.add_typer(adapt_cmds.adapt_app, name="adapt")
app.add_typer(db_cmds.db_app, name="db")
app.add_typer(review_cmds.reviews_app, name="reviews")
app.add_typer(monitor_cmds.monitor_app, name="monitor")
app.add_typer(experiment_cmds.profiles_app, name="profiles")
app.add_typer(experiment_cmds.experiment_app, name="experiment")

__all__ = ["app"]
