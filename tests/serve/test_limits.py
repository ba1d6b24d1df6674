"""One tenant's slow requests cannot take every worker: a tenant gets at most
``serve.tenant_concurrency`` searches at once; others go on being served."""

from __future__ import annotations

import threading
from pathlib import Path

from fastapi.testclient import TestClient

from groundwork.config import load_settings
from groundwork.serve.app import create_app
from groundwork.state.keys import SqliteKeyStore


def test_a_tenant_past_its_concurrency_gets_429_while_another_tenant_is_served(tmp_path: Path, monkeypatch) -> None:
    kb = tmp_path / "kb"
    keys = SqliteKeyStore(kb / "keys.sqlite")
    _, slow_key = keys.create("a", ["query"], [], "acme")
    _, other_key = keys.create("b", ["query"], [], "globex")
    app = create_app(load_settings(kb=kb, **{"serve.tenant_concurrency": 1}))
    release, entered = threading.Event(), threading.Event()

    def search(query, mode, top_k, flt, access):
        if access.tenant == "acme":
            entered.set()
            release.wait(30)
        return []

    with TestClient(app) as c:
        monkeypatch.setattr(app.state.service.kb, "search", search)
        slow = threading.Thread(
            target=lambda: c.post("/v1/search", json={"query": "q"}, headers={"Authorization": f"Bearer {slow_key}"})
        )
        slow.start()
        assert entered.wait(30)
        second = c.post("/v1/search", json={"query": "q"}, headers={"Authorization": f"Bearer {slow_key}"})
        other = c.post("/v1/search", json={"query": "q"}, headers={"Authorization": f"Bearer {other_key}"})
        release.set()
        slow.join(30)
    assert second.status_code == 429 and second.json()["error"]["code"] == "busy" and second.headers["Retry-After"]
    assert other.status_code == 200
