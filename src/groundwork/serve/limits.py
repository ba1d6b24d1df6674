"""Limits that keep one request from starving or exhausting the server.

- ``BodyLimit``: an ASGI middleware that counts a request body's bytes *as they arrive* and stops
  the request at ``serve.max_upload_mb``, whether or not it sent a Content-Length (a chunked upload
  without one is counted the same way). A declared Content-Length over the limit is refused before
  anything is read.
- ``TenantGate``: at most ``serve.tenant_concurrency`` searches/answers of one tenant run at once in
  this process; more get 429 at once instead of queueing behind each other, so a tenant that sends
  slow requests cannot take every worker thread (the process's pool is ``serve.threads``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class BodyTooLarge(Exception):
    """The request body passed the limit while it was being read."""

    def __init__(self, limit_bytes: int) -> None:
        super().__init__(f"request body over {limit_bytes} bytes")
        self.limit_bytes = limit_bytes


class BodyLimit:
    """ASGI middleware: ``limit_bytes`` per request body, enforced while reading."""

    def __init__(self, app: Any, limit_bytes: int) -> None:
        self.app, self.limit = app, limit_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _too_large(send, self.limit)
            return
        seen = 0

        async def counted() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        await self.app(scope, counted, send)


async def _too_large(send: Any, limit: int) -> None:
    import json

    body = json.dumps({"error": {"code": "too_large", "message": _message(limit)}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _message(limit: int) -> str:
    return f"request body over {limit / 1024 / 1024:g} MB (serve.max_upload_mb)"


class TenantGate:
    """At most ``per_tenant`` concurrent slots per tenant (None = requests without a tenant)."""

    def __init__(self, per_tenant: int) -> None:
        self.per_tenant = per_tenant
        self._busy: dict[str | None, int] = {}
        self._lock = threading.Lock()

    @contextmanager
    def slot(self, tenant: str | None) -> Iterator[bool]:
        """Yields True with a slot held, or False when the tenant already uses all of its slots."""
        with self._lock:
            got = self._busy.get(tenant, 0) < self.per_tenant
            if got:
                self._busy[tenant] = self._busy.get(tenant, 0) + 1
        try:
            yield got
        finally:
            if got:
                with self._lock:
                    self._busy[tenant] -= 1
