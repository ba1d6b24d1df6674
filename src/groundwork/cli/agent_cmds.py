"""``groundwork mcp`` (the knowledge base over MCP, stdio) and ``groundwork agent`` (one agent turn)."""

from __future__ import annotations

import typer

from groundwork.cli.common import ConfigOpt, KbOpt, fail, open_kb, out, print_json, user_errors
from groundwork.state.keys import SCOPES
from groundwork.types import Access

KEY_HELP = (
    "Act as this API key (its tenant, groups and scopes) instead of the local operator, who sees every "
    "document; read from $GROUNDWORK_MCP_KEY when not given (keeps it out of the process list)"
)


def _caller(kb, key: str | None):
    """The local operator (every document, every scope), or the caller of ``key``."""
    from groundwork.agent.records import Caller
    from groundwork.wiring import build_key_store

    if not key:
        return Caller("local", SCOPES, Access.all())
    record = build_key_store(kb.settings).verify(key)
    if record is None:
        fail(ValueError("the key given with --key / $GROUNDWORK_MCP_KEY is not a valid, unrevoked key"))
    return Caller(record.name, record.scopes, record.access)


def mcp(
    key: str | None = typer.Option(None, "--key", envvar="GROUNDWORK_MCP_KEY", help=KEY_HELP, show_default=False),
    kb: KbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Serve the knowledge base over the Model Context Protocol on stdin/stdout (tools: search, ask,
    get_document). For HTTP, `groundwork serve` has it under /mcp."""
    from groundwork.agent.mcp_server import build_mcp

    with user_errors():
        knowledge = open_kb(kb, config)
        knowledge.require_existing()
        caller = _caller(knowledge, key)
        build_mcp(knowledge, lambda headers: caller).run("stdio")


def agent(
    question: str = typer.Argument(..., help="The question or request"),
    key: str | None = typer.Option(None, "--key", envvar="GROUNDWORK_MCP_KEY", help=KEY_HELP, show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Print the whole turn (steps, pending actions) as JSON"),
    kb: KbOpt = None,
    config: ConfigOpt = None,
) -> None:
    """One agent turn (agent.* settings, docs/agents.md): the model may search, answer, propose
    actions (side effects wait for confirmation in the web UI or API) or escalate to a person."""
    from groundwork.agent.runtime import AgentRuntime

    with user_errors():
        knowledge = open_kb(kb, config)
        runtime = AgentRuntime.for_kb(knowledge)
        result = runtime.agent().run([{"role": "user", "content": question}], _caller(knowledge, key))
    if as_json:
        print_json(runtime.wire(result))
        return
    out.print(result.content)
    for c in result.citations:
        out.print(f"[{c['n']}] {c['source']}")
