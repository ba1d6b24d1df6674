"""The MCP server with the official `mcp` client: `groundwork mcp` over stdio, and /mcp over
streamable HTTP inside the real `groundwork serve`, where each key sees only its tenant's documents."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

pytestmark = pytest.mark.slow
GW = str(Path(sys.executable).parent / "groundwork")
TOOLS = {"search", "ask", "get_document"}


def result_text(result) -> str:
    """Everything a tool result carries, as one string (to look for a foreign document in it)."""
    return json.dumps(result.structured_content) + " ".join(getattr(c, "text", "") for c in result.content)


async def exercise(client: Client) -> dict:
    """List the tools and call each: search, ask, get_document of the first hit, get_document of 'nope'."""
    async with client as c:
        names = {t.name for t in (await c.list_tools()).tools}
        search = await c.call_tool("search", {"query": "where do visitors park", "top_k": 5})
        hits = search.structured_content["result"]
        ask = await c.call_tool("ask", {"question": "Where do visitors park?"})
        doc = await c.call_tool("get_document", {"id": hits[0]["doc_id"]}) if hits else None
        return {"names": names, "search": search, "hits": hits, "ask": ask, "doc": doc, "c": c}


def test_stdio_lists_the_three_tools_and_calls_each(agent_env) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GROUNDWORK_GENERATOR__BACKEND": "extractive"}
    params = StdioServerParameters(command=GW, args=["--kb", str(agent_env["kb"]), "mcp"], env=env)
    out = asyncio.run(exercise(Client(params, cache=None)))
    assert out["names"] == TOOLS
    docs = {h["doc_id"] for h in out["hits"]}  # the local operator sees every tenant's documents
    assert any("acme" in d for d in docs) and any("globex" in d for d in docs)
    assert not out["ask"].is_error and out["ask"].structured_content["citations"]
    assert not out["doc"].is_error and out["doc"].structured_content["chunks"][0]["text"]


async def http_calls(url: str, key: str, foreign_id: str) -> dict:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=120)
    out = await exercise(Client(streamable_http_client(url, http_client=http), cache=None))
    async with Client(
        streamable_http_client(
            url, http_client=httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=120)
        ),
        cache=None,
    ) as c:
        out["foreign"] = await c.call_tool("get_document", {"id": foreign_id})
        out["missing"] = await c.call_tool("get_document", {"id": "upload://acme/nope.md"})
    return out


def test_http_under_serve_each_key_sees_only_its_tenant(agent_env) -> None:
    srv, keys = agent_env["srv"], agent_env["keys"]
    ids = {"acme": "upload://acme/acme-parking.md", "globex": "upload://globex/globex-parking.md"}
    marks = {"acme": "ALPHA", "globex": "BRAVO"}
    for tenant, other in (("acme", "globex"), ("globex", "acme")):
        out = asyncio.run(http_calls(srv.url + "/mcp", keys[tenant], ids[other]))
        assert out["names"] == TOOLS
        assert {h["doc_id"] for h in out["hits"]} == {ids[tenant]}
        assert not out["doc"].is_error and marks[tenant] in result_text(out["doc"])
        for name in ("search", "ask", "doc", "foreign", "missing"):  # no foreign document anywhere
            text = result_text(out[name])
            assert marks[other] not in text and ids[other].split("/")[-1] not in text.replace(ids[other], ""), name
        assert all(c["doc_id"] == ids[tenant] for c in out["ask"].structured_content["citations"])
        assert out["foreign"].is_error and "not found" in result_text(out["foreign"])
        # a foreign id and a missing one are answered alike: nothing tells that the foreign one exists
        assert result_text(out["foreign"]).replace(ids[other], "X") == result_text(out["missing"]).replace(
            "upload://acme/nope.md", "X"
        )


def test_http_without_a_valid_key_is_refused_before_mcp(agent_env) -> None:
    url = agent_env["srv"].url + "/mcp"
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    accept = {"Accept": "application/json, text/event-stream"}
    for headers in ({}, {"Authorization": "Bearer gw_nope_nope"}):
        r = httpx.post(url, json=body, headers=accept | headers, timeout=30)
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
