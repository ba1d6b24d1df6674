"""Scheduled sync in `serve` (serve.sources, serve.sync_interval_s), in process with a 1 s interval:
a folder and a web site are synced by durable jobs, one at a time, each listed by GET /v1/syncs with
what it changed; a change to either source shows up in a later run's summary."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from groundwork.config import load_settings
from groundwork.serve.app import create_app
from tests.conftest import write
from tests.ingest.web_site import Site, page_html, serve

pytestmark = pytest.mark.slow


def _wait(client: TestClient, predicate, seconds: float = 30) -> list[dict]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        runs = client.get("/v1/syncs?limit=100").json()
        if predicate(runs):
            return runs
        time.sleep(0.1)
    raise AssertionError(f"no such sync run within {seconds} s: {runs}")


def test_sources_are_synced_on_a_schedule_by_one_job_at_a_time(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    write(docs / "dock.md", "# Dock\n\nThe loading dock opens at six in the morning.\n")
    site = Site(pages={"/news.html": page_html("News", "The staff party is held in the garden this summer.")})
    server, _ = serve(site)
    settings = load_settings(
        kb=tmp_path / "kb",
        **{
            "serve.sources": [str(docs), f"{site.url}/sitemap.xml"],
            "serve.sync_interval_s": 1.0,
            "web.allow_private": True,  # the site is on 127.0.0.1
        },
    )
    try:
        with TestClient(create_app(settings, no_auth=True)) as client:
            done = lambda runs: [r for r in runs if r["status"] == "done"]  # noqa: E731
            runs = _wait(client, lambda runs: done(runs), 180)  # the first run may load the embedding model
            first = done(runs)[-1]
            assert first["summary"]["added"] == 2 and first["summary"]["failed"] == 0
            assert first["job_id"].startswith("sync-")

            write(docs / "dock.md", "# Dock\n\nThe loading dock opens at seven in the morning.\n")
            site.pages["/news.html"] = page_html("News", "The staff party moves indoors to the canteen.")
            # a run may start between the two edits: the two updates may come in one run or in two
            runs = _wait(client, lambda runs: sum(r["summary"]["updated"] for r in done(runs)) >= 2)
            answer = client.post("/v1/answer", json={"question": "When does the loading dock open?"}).json()
            assert "seven" in answer["answer"]
    finally:
        server.shutdown()
    # Never two at once: each run was queued only after the one before it had finished.
    finished = sorted(done(runs), key=lambda r: r["created_at"])
    for before, after in zip(finished, finished[1:]):
        assert after["created_at"] >= before["finished_at"]
    assert len({r["job_id"] for r in runs}) == len(runs)
