"""The knowledge base over the Model Context Protocol (https://modelcontextprotocol.io), with the
official ``mcp`` SDK's ``MCPServer``: ``groundwork mcp`` (stdio) and ``/mcp`` in ``groundwork serve``
(streamable HTTP). Tools:

- ``search(query, top_k=5, filter=None)``: ranked chunks, as ``POST /v1/search`` returns them;
- ``ask(question, filter=None)``: the cited answer (or abstention) with its citations;
- ``get_document(id)``: the document's chunks in order; "not found" for an id the caller may not read,
  exactly as for one that does not exist (so a foreign id's existence is not revealed).

Every tool runs for the caller that ``identify`` names from the request's HTTP headers: over HTTP the
``Authorization: Bearer`` key, with the same scope (query), tenant and groups as on ``/v1``; over stdio
(no headers) the local operator, who sees every document unless ``groundwork mcp --key`` names a key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from groundwork.agent.records import Caller
from groundwork.errors import GroundworkError
from groundwork.kb import KnowledgeBase
from groundwork.types import to_wire

Identify = Callable[[Mapping[str, str] | None], Caller]  # raises ToolError when the caller is refused

INSTRUCTIONS = (
    "Groundwork: search a knowledge base, get cited answers from it, and read a document's chunks. "
    "Cite what you use; the results contain only documents this connection may read."
)
MAX_TOP_K = 50


def build_mcp(kb: KnowledgeBase, identify: Identify) -> MCPServer:
    """The MCP server with the three tools (see the module docstring)."""
    server = MCPServer("groundwork", instructions=INSTRUCTIONS, log_level="WARNING")

    @server.tool(name="search", description="Ranked passages of the knowledge base for a query (best first).")
    def search(query: str, ctx: Context, top_k: int = 5, filter: str | None = None) -> list[dict[str, Any]]:  # noqa: A002
        caller = identify(ctx.headers)
        if not 1 <= top_k <= MAX_TOP_K:
            raise ToolError(f"top_k: between 1 and {MAX_TOP_K}")
        hits = _run(lambda: kb.search(query, top_k=top_k, filter=filter, access=caller.access))
        return [h.to_dict() for h in hits]

    @server.tool(name="ask", description="A cited answer from the knowledge base, or an abstention.")
    def ask(question: str, ctx: Context, filter: str | None = None) -> dict[str, Any]:  # noqa: A002
        caller = identify(ctx.headers)
        ans = _run(lambda: kb.ask(question, filter=filter, caller=caller.name, access=caller.access))
        return {
            "answer": ans.answer,
            "abstained": ans.abstained,
            "citations": [to_wire(c) for c in ans.citations],
            "answer_id": ans.answer_id,
        }

    @server.tool(name="get_document", description="A document's chunks in order, by document id.")
    def get_document(id: str, ctx: Context) -> dict[str, Any]:  # noqa: A002 - the tool's argument name
        caller = identify(ctx.headers)
        chunks = _run(lambda: kb.document_chunks(id, caller.access))
        if not chunks:  # missing and foreign look alike
            raise ToolError(f"not found: no document with id {id!r}")
        return {
            "id": id,
            "chunks": [
                {"chunk_id": c.chunk_id, "position": c.position, "heading": c.heading, "page": c.page, "text": c.text}
                for c in chunks
            ],
        }

    return server


def _run(fn: Callable[[], Any]) -> Any:
    """``fn()``, with Groundwork's own errors (bad filter, no index, ...) as tool errors."""
    try:
        return fn()
    except GroundworkError as exc:
        raise ToolError(str(exc)) from None
