"""`--engine ray`: parse/chunk/embed as Ray Data stages on a local Ray (ray.init(num_cpus=2)) give
the same chunk ids and vectors as the local engine, and the same sync semantics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import write

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_local():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def corpus(folder: Path) -> None:
    for i in range(6):
        write(
            folder / f"doc{i}.md",
            f"# Topic {i}\n\n" + " ".join(f"Sentence {j} of document {i} about pumps and valves." for j in range(40)),
        )
    write(
        folder / "records.jsonl",
        '{"id": "r1", "text": "Forklifts need a licence."}\n{"id": "r2", "text": "Ladders are inspected monthly."}\n',
    )
    write(folder / "broken.pdf", b"%PDF-1.4 not really a pdf")


def vectors(kb) -> dict[str, np.ndarray]:
    return {r["chunk_id"]: r["vector"] for r in kb.store.export_rows()}


def test_ray_engine_equals_local_engine(ray_local, make_kb, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    corpus(folder)
    local, distributed = make_kb("local"), make_kb("ray")
    r_local = local.ingest([folder])
    r_ray = distributed.ingest([folder], engine="ray")
    assert (
        (r_ray.added, r_ray.chunks_written, len(r_ray.failed))
        == (r_local.added, r_local.chunks_written, 1)
        == (8, r_local.chunks_written, 1)
    )
    assert r_ray.failed[0].path.endswith("broken.pdf")
    a, b = vectors(local), vectors(distributed)
    assert sorted(a) == sorted(b) and len(a) > 8
    assert max(float(np.abs(a[k] - b[k]).max()) for k in a) < 1e-5
    for q in ("how are ladders checked", "pumps and valves in document 3"):
        assert [h.chunk.chunk_id for h in local.search(q)] == [h.chunk.chunk_id for h in distributed.search(q)]

    # Sync semantics are the driver's: unchanged files are not re-processed, deletions are synced.
    (folder / "doc0.md").unlink()
    write(folder / "doc1.md", "# Topic 1\n\nRewritten entirely: this document now covers compressors.")
    r2 = distributed.ingest([folder], engine="ray")
    assert (r2.added, r2.updated, r2.deleted, r2.unchanged) == (0, 1, 1, 6)
    assert "compressors" in distributed.search("compressors", top_k=1)[0].chunk.text
