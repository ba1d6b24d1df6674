"""Overlap of parsing with encoding: each full batch is embedded and written on one background thread
while the caller reads, parses and chunks the next files.

The model (torch) and the tokenizer (Rust) release the GIL, so the two overlap on a multi-core CPU and
fully on a GPU, where parsing, chunking and hashing would otherwise leave the device idle between
batches. Depth one: at most one batch is being written while the next fills, so memory stays at two
batches, and batches commit in the order they were filled (each still one atomic write).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from types import TracebackType


class BatchWriter:
    """Runs write jobs in submission order, on a background thread when ``background``, else inline.

    A job's exception is raised by the next ``submit`` or by ``wait``/``close``, so a failed write stops
    the run as an inline write would; the batches committed before it stay committed.
    """

    def __init__(self, background: bool) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-write") if background else None
        self._pending: Future[None] | None = None

    def submit(self, job: Callable[[], None]) -> None:
        """Wait for the previous job (raising its error), then start ``job``."""
        self.wait()
        if self._pool is None:
            job()
        else:
            self._pending = self._pool.submit(job)

    def wait(self) -> None:
        """Block until the job in flight is done. Raises whatever it raised."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)

    def __enter__(self) -> BatchWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            self.close()
            return
        # The run is failing already: let the write in flight finish (a batch is one commit, never
        # half), then report the run's own error rather than the writer's.
        with suppress(Exception):
            self.close()
