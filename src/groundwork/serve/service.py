"""What the routes share: the knowledge base, the service state (keys, jobs, rate limits), metrics,
the tracer, and the worker thread that runs ingest jobs."""

from __future__ import annotations

import threading
from typing import Any

from groundwork.config import Settings
from groundwork.ingest.sources import bytes_item
from groundwork.kb import KnowledgeBase
from groundwork.serve.metrics import Metrics
from groundwork.serve.telemetry import make_tracer
from groundwork.state.jobs import Job
from groundwork.types import IngestReport
from groundwork.wiring import build_service_state


def upload_uri(tenant: str | None, name: str) -> str:
    """An uploaded file's document id, ``upload://<tenant>/<file name>``: the same whichever replica
    ingests it (replicas share the index, not a disk)."""
    return f"upload://{tenant or '_shared'}/{name}"


class Service:
    """The state of one ``groundwork serve`` process."""

    def __init__(self, settings: Settings, no_auth: bool = False, span_exporter: Any = None) -> None:
        self.settings = settings
        self.kb = KnowledgeBase(settings=settings)
        state = build_service_state(settings, self.kb.components)
        self.keys, self.jobs, self.limiter = state.keys, state.jobs, state.limiter
        self.no_auth = no_auth
        self.metrics = Metrics(lambda: self.kb.embedder.cache_hits if self.model_loaded else 0)
        self.tracer = make_tracer(settings.serve.otlp_endpoint, span_exporter)
        self.write_lock = threading.Lock()  # one writer to the index at a time
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None

    @property
    def model_loaded(self) -> bool:
        """Whether the embedding model is loaded (what /readyz waits for)."""
        return self.kb.components.built("embedder")

    def start(self) -> None:
        """Load the model before the first request, then start the ingest worker."""
        _ = self.kb.embedder.dimension
        self._worker = threading.Thread(
            target=self.jobs.run_forever, args=(self.process, self._stop), daemon=True, name="ingest-worker"
        )
        self._worker.start()

    def stop(self) -> None:
        self._stop.set()
        if self._worker:
            self._worker.join(timeout=30)

    def process(self, job: Job) -> None:
        """Run one job: re-sync the configured folders, or ingest uploaded files one at a time
        (progress saved after each file)."""
        if job.kind == "sync":
            self._sync(job)
            return
        for name in job.files[job.done :]:
            data = (self.jobs.uploads / job.job_id / name).read_bytes()
            with self.write_lock:
                report = self.kb.ingest(
                    [],
                    items=[bytes_item(upload_uri(job.tenant, name), data)],
                    sync=False,
                    tenant=job.tenant,
                    allowed_groups=job.groups,
                    text_field=job.options.get("text_field"),
                    id_field=job.options.get("id_field"),
                    metadata_fields=job.options.get("metadata_fields"),
                )
            result = file_result(name, report)
            self.metrics.ingest_files.labels(result["status"]).inc()
            self.metrics.ingest_chunks.inc(report.chunks_written)
            job.results.append(result)
            job.done += 1
            self.jobs.save_progress(job)

    def _sync(self, job: Job) -> None:
        paths = self.settings.serve.sync_paths
        with self.write_lock:
            report = self.kb.ingest(paths, sync=True)
        done = {"status": "synced", "documents": report.added + report.updated, "chunks": report.chunks_written}
        job.results = [{"file": str(p), **done, "reason": ""} for p in paths]
        job.results += [{"file": f.path, "status": "failed", "reason": f.reason} for f in report.failed]
        job.done = len(job.files)


def file_result(name: str, report: IngestReport) -> dict[str, Any]:
    """One uploaded file's result, in words a person understands."""
    problem = report.failed or report.skipped
    if problem:
        return {"file": name, "status": "failed", "reason": _plain_reason(problem[0].reason)}
    status = "added" if report.added else "updated" if report.updated else "unchanged"
    documents = report.added + report.updated + report.unchanged
    return {"file": name, "status": status, "documents": documents, "chunks": report.chunks_written, "reason": ""}


def _plain_reason(reason: str) -> str:
    """The loader's reason (it already names what to do), capitalised."""
    return reason[0].upper() + reason[1:] if reason else "The file could not be read."
