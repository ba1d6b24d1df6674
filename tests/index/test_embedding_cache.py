"""The embedding cache keeps every committed vector across kill -9 (it no longer waits for an fsync
per write, which cost a new question ~8 ms: bench/hybrid_latency.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from groundwork.index.cache import EmbeddingCache

WRITER = """
import sys, time
from pathlib import Path
import numpy as np
from groundwork.index.cache import EmbeddingCache
cache = EmbeddingCache(Path(sys.argv[1]))
for i in range(20):
    cache.put_many("model", {f"question {i}": np.full(384, i, dtype=np.float32)})
print("written", flush=True)
time.sleep(120)
"""


def test_vectors_written_before_a_kill_9_are_there_after_it(tmp_path: Path) -> None:
    path = tmp_path / "embeddings.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"written"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    cache = EmbeddingCache(path)
    found = cache.get_many("model", [f"question {i}" for i in range(20)])
    assert len(found) == 20 and len(cache) == 20
    assert all(np.array_equal(found[f"question {i}"], np.full(384, i, dtype=np.float32)) for i in range(20))
