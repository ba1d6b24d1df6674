"""Errors at the HTTP boundary: the caller's mistakes are 4xx with the message; a bug is a 500 that
names the request id and is logged, its message never sent."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from groundwork.config import load_settings
from groundwork.errors import FilterError, RequestError
from groundwork.serve.app import create_app


@pytest.fixture
def client(tmp_path: Path):
    app = create_app(load_settings(kb=tmp_path / "kb"), no_auth=True)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c, app.state.service


def test_an_unexpected_exception_is_a_500_without_its_message(client, caplog, monkeypatch) -> None:
    c, svc = client

    def broken(*args, **kwargs):
        raise RuntimeError("connection to db at password=hunter2 lost")

    monkeypatch.setattr(svc.kb, "search", broken)
    with caplog.at_level(logging.ERROR, logger="groundwork.serve"):
        r = c.post("/v1/search", json={"query": "anything"}, headers={"X-Request-ID": "req-42"})
    assert r.status_code == 500
    body = r.json()["error"]
    assert body["code"] == "internal" and "req-42" in body["message"] and "hunter2" not in r.text
    assert any("hunter2" in (rec.exc_text or "") or rec.exc_info for rec in caplog.records)  # logged, with traceback


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (RequestError("mode must be one of bm25, dense, hybrid"), 422, "invalid_request"),
        (FilterError("filter: unknown field 'x'"), 422, "invalid_filter"),
    ],
)
def test_the_callers_mistakes_are_422_with_the_message(client, monkeypatch, error, status, code) -> None:
    c, svc = client

    def refuse(*args, **kwargs):
        raise error

    monkeypatch.setattr(svc.kb, "search", refuse)
    r = c.post("/v1/search", json={"query": "anything"})
    assert r.status_code == status and r.json()["error"] == {"code": code, "message": str(error)}


def test_an_internal_value_error_is_not_reported_as_the_callers_mistake(client, monkeypatch) -> None:
    c, svc = client

    def bug(*args, **kwargs):
        raise ValueError("could not convert string to float: 'abc' in internal_module.py")

    monkeypatch.setattr(svc.kb, "search", bug)
    r = c.post("/v1/search", json={"query": "anything"})
    assert r.status_code == 500 and "internal_module" not in r.text
