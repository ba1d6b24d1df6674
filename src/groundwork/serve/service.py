"""What the routes share: the knowledge base, the service state (keys, jobs, rate limits), metrics,
the tracer, and the worker thread that runs ingest jobs."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from groundwork.agent.runtime import AgentRuntime
from groundwork.config import Settings
from groundwork.ingest.sources import bytes_item
from groundwork.kb import KnowledgeBase
from groundwork.serve.limits import TenantGate
from groundwork.serve.metrics import Metrics
from groundwork.serve.monitoring import MonitorCollector, monitor_loop
from groundwork.serve.telemetry import make_tracer
from groundwork.state.experiment_control import ExperimentRouter
from groundwork.state.jobs import MAX_STARTS, Job, staged_path
from groundwork.types import FileResult, IngestReport
from groundwork.wiring import build_service_state

log = logging.getLogger("groundwork.serve")


def upload_uri(tenant: str | None, groups: list[str], name: str) -> str:
    """An uploaded file's document id: ``upload://<tenant>/<name>``, or ``upload://<tenant>/<g1+g2>/<name>``
    for a document restricted to groups; ``~`` stands for no tenant (not a valid tenant name).

    The owner is part of the identity: an upload can only ever replace a document of the same tenant
    and groups, which the uploading key can read (its groups must include the document's). It is the
    same whichever replica ingests it (replicas share the index, not a disk)."""
    owner, scope = tenant or "~", "+".join(sorted(groups))
    return f"upload://{owner}/{scope}/{name}" if scope else f"upload://{owner}/{name}"


class Service:
    """The state of one ``groundwork serve`` process."""

    def __init__(self, settings: Settings, no_auth: bool = False, span_exporter: Any = None) -> None:
        self.settings = settings
        self.kb = KnowledgeBase(settings=settings)
        state = build_service_state(settings, self.kb.components)
        self.keys, self.jobs, self.limiter = state.keys, state.jobs, state.limiter
        self.profiles, self.experiments = state.profiles, state.experiments
        self.router = ExperimentRouter(state.profiles, state.experiments, self.kb.audit)
        self.no_auth = no_auth
        self.agents = AgentRuntime.for_kb(self.kb)  # actions, pending actions, the agent loop
        self.metrics = Metrics(lambda: self.kb.embedder.cache_hits if self.model_loaded else 0, self.cache_counters)
        self.metrics.registry.register(MonitorCollector(lambda: self.kb.components.monitor.list(1)))
        self.tracer = make_tracer(settings.serve.otlp_endpoint, span_exporter)
        self.write_lock = threading.Lock()  # one writer to the index at a time
        self.gate = TenantGate(settings.serve.tenant_concurrency)
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._scheduler: threading.Thread | None = None
        self._monitor: threading.Thread | None = None

    def cache_counters(self) -> dict[str, Any]:
        """The hit/miss counters of the answer and retrieval caches built so far (for /metrics)."""
        c, out = self.kb.components, {}
        if c.built("answer_cache") and c.answer_cache is not None:
            out["answer"] = c.answer_cache.counter
        if c.built("search_pipeline") and hasattr(c.search_pipeline, "counter"):
            out["retrieval"] = c.search_pipeline.counter
        return out

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
        if self.settings.serve.sync_interval_s > 0 and self.sync_sources:
            self._scheduler = threading.Thread(target=self._schedule, daemon=True, name="sync-scheduler")
            self._scheduler.start()
        if self.settings.monitor.interval_s > 0:  # off by default: cron runs `groundwork monitor run`
            self._monitor = threading.Thread(
                target=monitor_loop, args=(self.kb, self._stop), daemon=True, name="monitor"
            )
            self._monitor.start()

    def stop(self) -> None:
        self._stop.set()
        # Joined, not left to die with the process: a daemon thread inside LanceDB's Rust code at
        # interpreter shutdown aborts the process (see index/lance_reads.py ``_load``).
        for thread in (self._worker, self._scheduler, self._monitor):
            if thread:
                thread.join(timeout=30)

    @property
    def sync_sources(self) -> list[str]:
        """What a sync job syncs: ``serve.sync_paths`` and ``serve.sources``."""
        return [str(p) for p in self.settings.serve.sync_paths] + list(self.settings.serve.sources)

    def _schedule(self) -> None:
        """Queue a sync job at the start of every ``serve.sync_interval_s`` slot (of Unix time, so every
        replica has the same slots). The queue inserts one job per slot across replicas, and none while
        a sync job is queued or running: runs never overlap, and a slow run skips the slots it spans."""
        interval = self.settings.serve.sync_interval_s
        while not self._stop.wait(interval - time.time() % interval):
            try:
                self.jobs.submit_scheduled("sync", int(time.time() // interval))
            except Exception:  # the database is briefly unreachable: the next slot tries again
                log.exception("could not queue the scheduled sync")

    def process(self, job: Job) -> None:
        """Run one job: re-sync the configured folders, or ingest the uploaded files in one run (one
        batch of writes, one index version). A file that the process died reading ``MAX_STARTS`` times
        fails instead of being read again, so one hostile file cannot crash the server in a loop."""
        if job.kind == "sync":
            self._sync(job)
            return
        names: dict[str, str] = {}  # document id -> file name
        items = []
        job.done = 0  # a job always runs whole (ingest is idempotent): done counts files read in this run
        for name in job.files:
            if job.starts.get(name, 0) >= MAX_STARTS:
                job.results.append({"file": name, "status": "failed", "reason": _CRASHED})
                continue
            uri = upload_uri(job.tenant, job.groups, name)
            names[uri] = name
            items.append(bytes_item(uri, staged_path(self.jobs.uploads, job, name).read_bytes()))
        report = self._ingest(job, items, names)
        for f in report.files:
            result = file_result(names[f.path], f, report.failed)
            self.metrics.ingest_files.labels(result["status"]).inc()
            job.results.append(result)
        self.metrics.ingest_chunks.inc(report.chunks_written)
        job.done, job.starts = len(job.files), {}

    def _ingest(self, job: Job, items: list, names: dict[str, str]) -> IngestReport:
        """Ingest ``items`` with the job's access control, recording which file is being read."""
        previous: list[str] = []

        def progress(uri: str, done: int, total: int) -> None:
            if previous:  # the file before this one is finished
                job.starts.pop(previous.pop(), None)
            if uri in names:
                job.starts[names[uri]] = job.starts.get(names[uri], 0) + 1
                previous.append(names[uri])
            job.done = min(done, len(job.files))  # files read so far, for progress bars
            self.jobs.save_progress(job)  # before reading: a crash while reading it is counted

        with self.write_lock:
            return self.kb.ingest(
                [],
                items=items,
                sync=False,
                progress=progress,
                tenant=job.tenant,
                allowed_groups=job.groups,
                text_field=job.options.get("text_field"),
                id_field=job.options.get("id_field"),
                metadata_fields=job.options.get("metadata_fields"),
                trusted_metadata=False,  # an upload's records never choose their own tenant or groups
                namespace_ids=True,
                replace_foreign=False,  # a key writes over its own documents only
            )

    def _sync(self, job: Job) -> None:
        """Sync every configured source (folders, S3 prefixes, web sites) in one run; the job's
        ``summary`` counts documents added, updated, unchanged, deleted and failed."""
        paths = self.sync_sources
        with self.write_lock:
            report = self.kb.ingest(paths, sync=True)
        done = {"status": "synced", "documents": report.added + report.updated, "chunks": report.chunks_written}
        job.results = [{"file": str(p), **done, "reason": ""} for p in paths]
        job.results += [{"file": f.path, "status": "failed", "reason": f.reason} for f in report.failed]
        job.summary = {
            "added": report.added,
            "updated": report.updated,
            "unchanged": report.unchanged,
            "deleted": report.deleted,
            "failed": len(report.failed),
        }
        job.done = len(job.files)


_CRASHED = (
    "The server stopped twice while reading this file (out of memory, or killed), so it is not read again. "
    "Check the file (size, compression) and upload it again."
)


def file_result(name: str, f: FileResult, failed: list[FileResult]) -> dict[str, Any]:
    """One uploaded file's result, in words a person understands. Records of a records file that
    failed alone (``<source>#<record>`` in ``failed``) are counted in the reason."""
    if f.status in ("failed", "skipped"):
        return {"file": name, "status": "failed", "reason": _plain_reason(f.reason)}
    bad = [x for x in failed if x.path.startswith(f.path + "#")]
    reason = f"{len(bad)} record(s) failed; the first: {bad[0].reason}" if bad else ""
    return {"file": name, "status": f.status, "documents": f.documents, "chunks": f.chunks, "reason": reason}


def _plain_reason(reason: str) -> str:
    """The loader's reason (it already names what to do), capitalised."""
    return reason[0].upper() + reason[1:] if reason else "The file could not be read."
