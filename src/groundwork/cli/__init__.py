"""The ``groundwork`` command line: each command is a thin layer over ``KnowledgeBase`` (or the
service state), and all of them build settings one way (``groundwork.cli.common.settings``).

Exit codes: 0 success; 1 ``ingest`` finished but some files failed, or the eval gate failed;
2 bad input or settings.
"""

from __future__ import annotations

from pathlib import Path

import typer

from groundwork.cli import adapt_cmds, db_cmds, eval_cmds, kb_cmds, service_cmds
from groundwork.cli.common import CONFIG_HELP, KB_HELP, set_global

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


for command in (kb_cmds.ingest, kb_cmds.search, kb_cmds.ask, kb_cmds.reindex, kb_cmds.rollback):
    app.command()(command)
for command in (kb_cmds.versions, kb_cmds.documents, service_cmds.serve):
    app.command()(command)
app.command("migrate")(db_cmds.migrate_cmd)
app.command("decide")(adapt_cmds.decide_cmd)
app.add_typer(service_cmds.keys_app, name="keys")
app.add_typer(service_cmds.audit_app, name="audit")
app.add_typer(service_cmds.config_app, name="config")
app.add_typer(eval_cmds.eval_app, name="eval")
app.add_typer(adapt_cmds.adapt_app, name="adapt")
app.add_typer(db_cmds.db_app, name="db")

__all__ = ["app"]
