"""Issue #2 'must show' 5: kill -9 during an ingest; a rerun ends with the uninterrupted chunk count."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from groundwork.config import load_settings
from groundwork.kb import KnowledgeBase
from tests.conftest import write

TOPICS = ["gardening", "astronomy", "cooking", "sailing", "chess", "pottery", "cycling", "baking"]


def make_corpus(root: Path, n: int = 80) -> Path:
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        paras = [
            f"Note {i} on {topic}, paragraph {j}: " + " ".join(f"{topic} fact {i}-{j}-{k}." for k in range(30))
            for j in range(3)
        ]
        write(root / f"doc{i:03d}.md", f"# {topic.title()} {i}\n\n" + "\n\n".join(paras))
    return root


def ingest_cmd(kb: Path, docs: Path) -> list[str]:
    return [sys.executable, "-m", "groundwork.cli", "--kb", str(kb), "ingest", str(docs), "--json"]


def manifests(kb: Path) -> int:
    d = kb / "lancedb" / "chunks.lance" / "_versions"
    return len(list(d.glob("*.manifest"))) if d.is_dir() else 0


def kb_at(path: Path) -> KnowledgeBase:
    return KnowledgeBase(settings=load_settings(kb=path))


@pytest.mark.slow
def test_kill_mid_ingest_then_rerun_matches_clean_run(tmp_path: Path) -> None:
    docs = make_corpus(tmp_path / "docs")
    env = {**os.environ, "GROUNDWORK_INGEST__BATCH_CHUNKS": "8"}

    clean = tmp_path / "clean"
    subprocess.run(ingest_cmd(clean, docs), env=env, check=True, capture_output=True)
    expected = kb_at(clean).count_chunks()
    assert expected > 80

    crashed = tmp_path / "crashed"
    proc = subprocess.Popen(ingest_cmd(crashed, docs), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while manifests(crashed) < 5 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL

    # Consistent after the crash: fewer chunks than a full run, and every document present is whole.
    partial = kb_at(crashed)
    n_partial = partial.count_chunks()
    assert 0 < n_partial < expected, "the kill must land mid-run for this test to mean anything"
    full_counts = {d.doc_id.rsplit("/", 1)[-1]: d.chunks for d in kb_at(clean).documents()}
    for d in partial.documents():
        assert d.chunks == full_counts[d.doc_id.rsplit("/", 1)[-1]]

    subprocess.run(ingest_cmd(crashed, docs), env=env, check=True, capture_output=True)
    rerun = kb_at(crashed)
    assert rerun.count_chunks() == expected
    ids = rerun.store.chunk_ids()
    assert not [c for c, k in Counter(ids).items() if k > 1]
    assert sorted(i.rsplit("/", 1)[-1] for i in ids) == sorted(
        i.rsplit("/", 1)[-1] for i in kb_at(clean).store.chunk_ids()
    )
