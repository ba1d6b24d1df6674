"""``/mcp``: the MCP server of ``groundwork.agent.mcp_server`` over streamable HTTP, inside ``serve``.

The caller's key applies exactly as on ``/v1``: a request without a valid key (``Authorization:
Bearer``) is answered 401 before the MCP layer reads it, a key without the query scope 403, the
key's rate limit applies, and every tool runs with the key's tenant and groups. Stateless mode with
JSON responses: any replica answers any request (no session affinity).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.server.transport_security import TransportSecuritySettings
from starlette.datastructures import Headers

from groundwork.agent.mcp_server import build_mcp
from groundwork.agent.records import Caller
from groundwork.serve.auth import Principal, authenticate
from groundwork.serve.errors import error_response
from groundwork.serve.service import Service

LOOPBACK = TransportSecuritySettings(
    enable_dns_rebinding_protection=True,  # --no-auth: a web page must not reach it through DNS rebinding
    allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
    allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
)


def _principal(svc: Service, authorization: str | None) -> Principal | None:
    return authenticate(authorization, svc.keys, svc.no_auth)


def _caller(p: Principal) -> Caller:
    return Caller(p.name, p.scopes, p.access)


class McpEndpoint:
    """The ASGI app at ``/mcp`` and the lifespan of its session manager."""

    def __init__(self, svc: Service) -> None:
        self.svc = svc

        def identify(headers: Any) -> Caller:
            p = _principal(svc, headers.get("authorization") if headers is not None else None)
            if p is None:  # checked before too; never the local operator's access over HTTP
                raise ToolError("unauthorized: send Authorization: Bearer <key>")
            return _caller(p)

        self.server = build_mcp(svc.kb, identify)
        security = LOOPBACK if svc.no_auth else TransportSecuritySettings(enable_dns_rebinding_protection=False)
        self.server.streamable_http_app(stateless_http=True, json_response=True, transport_security=security)
        self.inner = StreamableHTTPASGIApp(self.server.session_manager)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with self.server.session_manager.run():
            yield

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.inner(scope, receive, send)
        header = Headers(scope=scope).get("authorization")
        p = await anyio.to_thread.run_sync(_principal, self.svc, header)
        if p is None:
            msg = "missing or invalid API key; send Authorization: Bearer <key>"
            return await error_response(401, "unauthorized", msg)(scope, receive, send)
        if "query" not in p.scopes and "admin" not in p.scopes:
            return await error_response(403, "forbidden", "this key lacks the 'query' scope")(scope, receive, send)
        wait = await anyio.to_thread.run_sync(self.svc.limiter.take, p.key_id)
        if wait > 0:
            headers = {"Retry-After": str(max(1, round(wait)))}
            return await error_response(429, "rate_limited", "too many requests for this key", headers)(
                scope, receive, send
            )
        await self.inner(scope, receive, send)
