"""What every command shares: the consoles, the one way settings are built, and error reporting.

Settings for every command come from ``settings()``: defaults < groundwork.toml (or ``--config``) <
``GROUNDWORK_*`` < the command's own flags. ``--kb`` and ``--config`` may be given before the command
(``groundwork --kb X search q``) or after it (``groundwork search q --kb X``); after wins.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from groundwork.config import Settings, load_settings
from groundwork.errors import GroundworkError
from groundwork.kb import KnowledgeBase

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)  # never break a message (a path) across lines

KB_HELP = (
    "Knowledge-base folder, or s3://bucket/path for the index in an object store "
    "[default: ./.groundwork or $GROUNDWORK_KB]"
)
CONFIG_HELP = "Settings file [default: $GROUNDWORK_CONFIG, or ./groundwork.toml if present]"
KbOpt = Annotated[str | None, typer.Option("--kb", help=KB_HELP, show_default=False)]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help=CONFIG_HELP, show_default=False)]


class _Global:
    """``--kb`` / ``--config`` given before the command (the root callback sets them)."""

    kb: str | None = None
    config: Path | None = None


def set_global(kb: str | None, config: Path | None) -> None:
    _Global.kb, _Global.config = kb, config


def kb_overrides(kb: str | None) -> dict[str, Any]:
    """``--kb FOLDER``, or ``--kb s3://bucket/path``: the LanceDB tables in an object store
    (index.lance_uri), with the state files (keys, audit, embedding cache) in the default local folder."""
    if not kb:
        return {}
    return {"index.lance_uri": kb} if "://" in kb else {"kb": Path(kb)}


def settings(kb: str | None = None, config: Path | None = None, **overrides: Any) -> Settings:
    """The effective settings of a command. ``overrides`` are dotted keys; None values are ignored.
    Raises ConfigError (a missing or invalid config file, an invalid value)."""
    flags = {k: v for k, v in overrides.items() if v is not None}
    return load_settings(config or _Global.config, **kb_overrides(kb or _Global.kb), **flags)


def open_kb(kb: str | None = None, config: Path | None = None, **overrides: Any) -> KnowledgeBase:
    """The knowledge base of a command (see ``settings``)."""
    return KnowledgeBase(settings=settings(kb, config, **overrides))


def fail(exc: BaseException) -> NoReturn:
    """Print ``error: <message>`` on stderr and exit 2 (bad input or settings)."""
    err.print(f"[bold red]error:[/] {escape(str(exc))}")
    raise typer.Exit(2)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn a GroundworkError (the user's mistake, or a reported failure) into ``fail``; anything
    else is a bug and keeps its traceback."""
    try:
        yield
    except GroundworkError as exc:
        fail(exc)


def print_json(data: Any) -> None:
    """Machine-readable output: plain JSON on stdout, never wrapped or coloured."""
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def display(source: str) -> str:
    """Paths under the working directory are shown relative to it."""
    try:
        if Path(source).is_absolute() and Path(source).is_relative_to(Path.cwd()):
            return os.path.relpath(source)
    except ValueError:
        pass
    return source
