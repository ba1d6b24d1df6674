"""A file that killed the server while it was being read is failed on the next start, not read again."""

from __future__ import annotations

from pathlib import Path

from groundwork.config import load_settings
from groundwork.serve.service import Service
from groundwork.state.jobs import MAX_STARTS
from groundwork.types import Access


def test_a_file_that_crashed_the_worker_twice_is_failed_and_the_rest_of_its_job_is_indexed(tmp_path: Path) -> None:
    svc = Service(load_settings(kb=tmp_path / "kb"))
    job = svc.jobs.submit(
        {"bomb.md": b"# Bomb\n\nboom\n", "fine.md": b"# Fine\n\nThe fine file.\n"}, "bot", Access(), [], {}
    )
    job.status, job.starts = "running", {"bomb.md": MAX_STARTS}  # as the worker left it, twice killed while reading
    svc.jobs.save_progress(job)
    svc.process(job)
    results = {r["file"]: r for r in job.results}
    assert results["bomb.md"]["status"] == "failed" and "stopped twice" in results["bomb.md"]["reason"]
    assert results["fine.md"]["status"] == "added"
    assert [d.source for d in svc.kb.documents()] == ["upload://~/fine.md"]
    assert job.starts == {}  # a finished job carries no start counts


def test_a_file_read_to_the_end_does_not_count_as_crashed(tmp_path: Path) -> None:
    svc = Service(load_settings(kb=tmp_path / "kb"))
    files = {f"f{i}.md": f"# F{i}\n\nfile number {i}\n".encode() for i in range(3)}
    job = svc.jobs.submit(files, "bot", Access(), [], {})
    seen: list[dict] = []
    original = svc.jobs.save_progress
    svc.jobs.save_progress = lambda j: (seen.append(dict(j.starts)), original(j))[1]
    svc.process(job)
    assert all(sum(s.values()) <= 1 for s in seen)  # at any time only the file being read is counted
    assert {r["status"] for r in job.results} == {"added"}
