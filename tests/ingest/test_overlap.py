"""The GPU path on a CPU machine: the device choice of ``embedder.device = "auto"`` and the overlap of
parsing with encoding, with the real model."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from groundwork.config import EmbedderSettings
from groundwork.errors import ConfigError
from groundwork.index import device
from groundwork.index.device import place
from groundwork.ingest.overlap import BatchWriter
from tests.conftest import write

TEXTS = {
    "a.md": "# Leave\nStaff get 25 days of paid leave a year.",
    "b.md": "# Travel\nTrain tickets are booked through the travel desk.",
    "c.md": "# Laptops\nLaptops are replaced every four years.",
    "d.md": "# Parking\nThe car park opens at seven in the morning.",
}


def test_auto_is_cpu_without_a_gpu_and_cuda_fp16_with_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device, "_cuda_available", lambda: False)
    assert place(EmbedderSettings()) == device.Placement("cpu", False, device.CPU_BATCH)
    monkeypatch.setattr(device, "_cuda_available", lambda: True)
    assert place(EmbedderSettings()) == device.Placement("cuda", True, device.CUDA_BATCH)
    assert place(EmbedderSettings(precision="fp32", batch_size=64)) == device.Placement("cuda", False, 64)


def test_a_device_torch_cannot_use_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device, "_cuda_available", lambda: False)
    with pytest.raises(ConfigError, match=r"embedder\.device = 'cuda:1'.*no CUDA device"):
        place(EmbedderSettings(device="cuda:1"))
    with pytest.raises(ConfigError, match=r"embedder\.precision = 'fp16' needs a CUDA device"):
        place(EmbedderSettings(device="cpu", precision="fp16"))


def test_the_real_detection_matches_torch() -> None:
    import torch

    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert place(EmbedderSettings()).device == expected


def _ingest(make_kb, tmp_path, name: str, overlap: bool, progress=None):
    for file, text in TEXTS.items():
        write(tmp_path / "docs" / file, text)
    kb = make_kb(name, **{"ingest.batch_chunks": 1, "ingest.overlap_encode": overlap})
    return kb, kb.ingest([tmp_path / "docs"], progress=progress)


def test_the_next_file_is_parsed_while_a_batch_is_encoded(make_kb, tmp_path, monkeypatch) -> None:
    """The first batch's encode waits until the ingest has started on the next file: that happens only
    when encoding runs beside parsing (inline, the wait would time out first)."""
    next_file_started = threading.Event()
    overlapped: list[bool] = []
    kb = make_kb("kb", **{"ingest.batch_chunks": 1})
    real_embed = kb.embedder.embed

    def embed(texts, token_counts=None):
        if not overlapped:
            overlapped.append(next_file_started.wait(timeout=5))
        return real_embed(texts, token_counts)

    monkeypatch.setattr(kb.embedder, "embed", embed)

    def progress(path: str, done: int, total: int) -> None:
        if done >= 1:
            next_file_started.set()

    for file, text in TEXTS.items():
        write(tmp_path / "docs" / file, text)
    report = kb.ingest([tmp_path / "docs"], progress=progress)
    assert overlapped == [True]
    assert (report.added, report.chunks_written, len(report.failed)) == (4, 4, 0)
    assert kb.search("When does the car park open?", mode="dense", top_k=1)[0].chunk.doc_id.endswith("d.md")


def test_overlap_writes_the_same_index_as_inline(make_kb, tmp_path) -> None:
    on, r_on = _ingest(make_kb, tmp_path, "on", True)
    off, r_off = _ingest(make_kb, tmp_path, "off", False)
    assert (r_on.added, r_on.chunks_written, r_on.chunks_embedded) == (r_off.added, r_off.chunks_written, 4)
    q = "How often are laptops replaced?"
    hits_on, hits_off = on.search(q, mode="dense", top_k=4), off.search(q, mode="dense", top_k=4)
    assert [h.chunk.chunk_id for h in hits_on] == [h.chunk.chunk_id for h in hits_off]
    assert np.allclose([h.score for h in hits_on], [h.score for h in hits_off], atol=1e-6)


def test_a_failed_background_write_stops_the_run_after_the_batches_before_it(make_kb, tmp_path, monkeypatch) -> None:
    kb = make_kb("kb", **{"ingest.batch_chunks": 1})
    for file, text in TEXTS.items():
        write(tmp_path / "docs" / file, text)
    real = kb.store.replace_documents
    calls: list[int] = []

    def replace_documents(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(kb.store, "replace_documents", replace_documents)
    with pytest.raises(OSError, match="disk full"):
        kb.ingest([tmp_path / "docs"])
    assert len(kb.store.list_documents()) == 2  # the two batches committed before the failure stay
    monkeypatch.setattr(kb.store, "replace_documents", real)
    assert kb.ingest([tmp_path / "docs"]).added == 2  # a rerun finishes the work


def test_the_writer_keeps_order_and_raises_on_the_next_submit() -> None:
    done: list[int] = []
    with pytest.raises(ValueError, match="batch 1"), BatchWriter(background=True) as w:
        w.submit(lambda: done.append(0))

        def fail() -> None:
            raise ValueError("batch 1")

        w.submit(fail)
        w.submit(lambda: done.append(2))  # raises batch 1's error: nothing after a failure runs
    assert done == [0]
