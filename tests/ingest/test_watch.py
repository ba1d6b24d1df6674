"""`ingest --watch`: a watcher thread (the CLI's loop, stopped by an event instead of Ctrl-C) re-syncs
an edited, an added and a deleted file, and the next answer reflects the edit within 5 s. Polled,
never slept for a fixed time."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from groundwork.ingest.watch import Changes, watch
from tests.conftest import write


def _until(predicate, seconds: float) -> float:
    """Seconds until ``predicate()`` held (polled), or AssertionError after ``seconds``."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"not within {seconds} s")


def test_watch_resyncs_edits_additions_and_deletions(make_kb, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    write(docs / "boiler.md", "# Boiler\n\nThe boiler in building C is serviced every March by the night shift.\n")
    write(docs / "gate.md", "# Gate\n\nThe north gate closes at ten in the evening on weekdays.\n")
    kb = make_kb()
    assert kb.ingest([docs]).added == 2
    batches: list[Changes] = []
    errors: list[str] = []

    def apply(changes: Changes) -> None:
        report = kb.sync_changes(changes.changed, changes.deleted)
        errors.extend(f.reason for f in report.failed)
        batches.append(changes)

    stop, ready = threading.Event(), threading.Event()
    watcher = threading.Thread(target=watch, args=([docs], apply, stop, kb.path, 100, ready.set), daemon=True)
    watcher.start()
    try:
        assert ready.wait(30)
        write(docs / "broken.pdf", b"%PDF-1.4 not really a pdf")  # fails alone; the watcher goes on
        write(docs / "boiler.md", "# Boiler\n\nThe boiler in building C is serviced every October by the day shift.\n")
        (docs / "gate.md").unlink()

        def reflected() -> bool:
            answer = kb.ask("When is the boiler in building C serviced?")
            return "October" in answer.answer

        took = _until(reflected, 5.0)
        _until(lambda: not any(d.source.endswith("gate.md") for d in kb.documents()), 5.0)
        # the batch is recorded once sync_changes returned (after its deletions were visible)
        _until(lambda: any("broken.pdf" in str(p) for b in batches for p in b.changed), 5.0)
        assert any("broken.pdf" in e or "PDF" in e for e in errors), errors
        assert watcher.is_alive()
        print(f"edit reflected after {took:.2f} s")
    finally:
        stop.set()
        watcher.join(timeout=10)
    assert not watcher.is_alive()  # the stop event ends it cleanly


def test_watch_refuses_remote_sources() -> None:
    from typer.testing import CliRunner

    from groundwork.cli import app

    r = CliRunner().invoke(app, ["ingest", "--watch", "https://example.com/sitemap.xml"])
    assert r.exit_code == 2 and "serve.sources" in r.output
