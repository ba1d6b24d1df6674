"""The HTTP API: ``create_app(settings)`` builds the FastAPI app that ``groundwork serve`` runs.

Every route needs a key (``Authorization: Bearer gw_...``) with the route's scope (query, ingest,
admin) unless the app runs with ``no_auth`` (development, loopback only). Every read is limited to
the documents the key may see: the key's tenant and groups become an ``Access`` that the store puts
in each query's WHERE clause. Errors are ``{"error": {"code", "message"}}``, never a stack trace.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import asdict
from datetime import UTC
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from groundwork.audit import AuditNotFound
from groundwork.config import Settings
from groundwork.errors import FilterError, GroundworkError, StoreError
from groundwork.ingest.sync import bytes_item
from groundwork.kb import KnowledgeBase
from groundwork.serve import schemas as S
from groundwork.serve.auth import PgRateLimiter, Principal, RateLimiter, authenticate
from groundwork.serve.jobs import Job, JobQueue, PgJobQueue
from groundwork.serve.keys import KeyStore, PgKeyStore
from groundwork.serve.metrics import Metrics
from groundwork.serve.telemetry import make_tracer, record_pipeline, request_id
from groundwork.types import Access, IndexVersion

log = logging.getLogger("groundwork.serve")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def _err(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


_E = {"model": S.ErrorBody}
AUTH_ERRORS = {401: _E, 403: _E, 429: _E, 422: _E}


class Service:
    """What the routes share: the knowledge base, keys, jobs, metrics, the tracer and the worker."""

    def __init__(self, settings: Settings, no_auth: bool = False, span_exporter: Any = None) -> None:
        self.settings = settings
        self.kb = KnowledgeBase(settings=settings)
        self.shared = settings.store == "postgres"  # keys, jobs, audit and rate limits shared by replicas
        if self.shared:
            pool = self.kb.store.pool  # opening the store applies missing migrations
            self.keys: KeyStore | PgKeyStore = PgKeyStore(pool)
            self.jobs: JobQueue | PgJobQueue = PgJobQueue(pool, Path(settings.kb), settings.serve.job_lease_seconds)
        else:
            self.keys = KeyStore(Path(settings.kb) / "keys.sqlite")
            self.jobs = JobQueue(Path(settings.kb))
        self.no_auth = no_auth
        self.metrics = Metrics(
            lambda: getattr(self.kb.embedder, "cache_hits", 0) if "embedder" in self.kb.__dict__ else 0
        )
        self.tracer = make_tracer(settings.serve.otlp_endpoint, span_exporter)
        rate, burst = settings.serve.rate_per_minute / 60.0, settings.serve.rate_burst
        self.limiter = PgRateLimiter(self.kb.store.pool, rate, burst) if self.shared else RateLimiter(rate, burst)
        self.write_lock = threading.Lock()  # one writer to the index at a time
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None

    def start(self) -> None:
        self.kb.embedder  # noqa: B018 - load the model before the first request, for /readyz
        self._worker = threading.Thread(
            target=self.jobs.run_forever, args=(self.process, self._stop), daemon=True, name="ingest-worker"
        )
        self._worker.start()

    def stop(self) -> None:
        self._stop.set()
        if self._worker:
            self._worker.join(timeout=30)

    def process(self, job: Job) -> None:
        """Ingest a job's files with its access control, one file at a time (progress per file)."""
        if job.kind == "sync":
            with self.write_lock:
                report = self.kb.ingest(self.settings.serve.sync_paths, sync=True)
            job.results = [
                {
                    "file": str(p),
                    "status": "synced",
                    "documents": report.added + report.updated,
                    "chunks": report.chunks_written,
                    "reason": "",
                }
                for p in self.settings.serve.sync_paths
            ]
            job.results += [{"file": f.path, "status": "failed", "reason": f.reason} for f in report.failed]
            job.done = len(job.files)
            return
        dest_root = self.jobs.files / (job.tenant or "_shared")
        dest_root.mkdir(parents=True, exist_ok=True)
        opts = job.options
        for name in job.files[job.done :]:
            src, dest = self.jobs.uploads / job.job_id / name, dest_root / name
            kwargs: dict[str, Any] = {
                "sync": False,
                "tenant": job.tenant,
                "allowed_groups": job.groups,
                "text_field": opts.get("text_field"),
                "id_field": opts.get("id_field"),
                "metadata_fields": opts.get("metadata_fields"),
            }
            if self.shared:
                # Replicas share the index, not a disk: the document is named upload://<tenant>/<file>,
                # the same whichever replica ingests it, and its bytes come from the job in PostgreSQL.
                item = bytes_item(f"upload://{job.tenant or '_shared'}/{name}", src.read_bytes())
                with self.write_lock:
                    report = self.kb.ingest([], items=[item], **kwargs)
            else:
                if src.exists():
                    src.replace(dest)
                with self.write_lock:
                    report = self.kb.ingest([dest], **kwargs)
            if report.failed:
                result = {"file": name, "status": "failed", "reason": _plain_reason(report.failed[0].reason)}
                dest.unlink(missing_ok=True)
            elif report.skipped:
                result = {"file": name, "status": "failed", "reason": _plain_reason(report.skipped[0].reason)}
                dest.unlink(missing_ok=True)
            else:
                status = "added" if report.added else "updated" if report.updated else "unchanged"
                result = {
                    "file": name,
                    "status": status,
                    "documents": report.added + report.updated + report.unchanged,
                    "chunks": report.chunks_written,
                    "reason": "",
                }
            self.metrics.ingest_files.labels(result["status"]).inc()
            self.metrics.ingest_chunks.inc(report.chunks_written)
            job.results.append(result)
            job.done += 1
            self.jobs.save_progress(job)


def _plain_reason(reason: str) -> str:
    """File errors in words a person understands (the loader's reason already names what to do)."""
    return reason[0].upper() + reason[1:] if reason else "The file could not be read."


def create_app(settings: Settings, no_auth: bool = False, span_exporter: Any = None) -> FastAPI:
    svc = Service(settings, no_auth, span_exporter)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        svc.start()
        yield
        svc.stop()

    app = FastAPI(
        title="Groundwork",
        version="1",
        lifespan=lifespan,
        description="Answers grounded in your own documents: search, cited answers, an OpenAI-compatible chat endpoint.",
    )
    app.state.service = svc

    # -- errors -----------------------------------------------------------------------------------
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _err(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", []) if p != "body")
        return _err(422, "invalid_request", f"{where}: {first.get('msg')}" if where else str(first.get("msg")))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}
        return _err(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail))

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return _err(500, "internal", f"internal error (request id {request_id.get()}); see the server log")

    @app.middleware("http")
    async def _observe(request: Request, call_next):
        rid = request.headers.get("x-request-id") or uuid.uuid4().hex[:16]
        token = request_id.set(rid)
        t0 = time.perf_counter()
        limit = settings.serve.max_upload_mb * 1024 * 1024
        if int(request.headers.get("content-length") or 0) > limit:
            response = _err(
                413, "too_large", f"request body over {settings.serve.max_upload_mb} MB (serve.max_upload_mb)"
            )
        else:
            try:
                response = await call_next(request)
            except Exception:  # reached only when a handler itself fails
                log.exception("unhandled error")
                response = _err(500, "internal", f"internal error (request id {rid})")
        route = request.scope.get("route")
        endpoint = getattr(route, "path", "unmatched")
        svc.metrics.requests.labels(endpoint, request.method, str(response.status_code)).inc()
        svc.metrics.latency.labels(endpoint).observe(time.perf_counter() - t0)
        response.headers["X-Request-ID"] = rid
        log.info(
            "request",
            extra={
                "method": request.method,
                "path": endpoint,
                "status": response.status_code,
                "ms": round((time.perf_counter() - t0) * 1000, 1),
            },
        )
        request_id.reset(token)
        return response

    def scope(name: str):
        def dep(request: Request) -> Principal:
            p = authenticate(request.headers.get("authorization"), svc.keys, no_auth)
            if p is None:
                raise ApiError(401, "unauthorized", "missing or invalid API key; send Authorization: Bearer <key>")
            if name not in p.scopes and "admin" not in p.scopes:
                raise ApiError(403, "forbidden", f"this key lacks the '{name}' scope")
            wait = svc.limiter.take(p.key_id)
            if wait > 0:
                raise ApiError(
                    429, "rate_limited", "too many requests for this key", {"Retry-After": str(max(1, round(wait)))}
                )
            return p

        return dep

    def top_k(value: int | None) -> int | None:
        if value is not None and value > settings.serve.max_top_k:
            raise ApiError(422, "invalid_request", f"top_k: at most {settings.serve.max_top_k} (serve.max_top_k)")
        return value

    def user_error(exc: Exception) -> ApiError:
        if isinstance(exc, FilterError):
            return ApiError(422, "invalid_filter", str(exc))
        if isinstance(exc, StoreError):
            return ApiError(409, "no_index", str(exc))
        return ApiError(422, "invalid_request", str(exc))

    # -- health ------------------------------------------------------------------------------------
    @app.get("/healthz", response_model=S.Health, tags=["ops"])
    def healthz() -> dict:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", response_model=S.Ready, responses={503: {"model": S.Ready}}, tags=["ops"])
    def readyz() -> Any:
        """The model is loaded and the index is open (an empty knowledge base is ready too)."""
        model = "embedder" in svc.kb.__dict__
        body = {"status": "ready" if model else "starting", "index": svc.kb.store.exists, "model": model}
        return body if model else JSONResponse(body, status_code=503)

    @app.get("/metrics", response_class=PlainTextResponse, tags=["ops"])
    def metrics() -> PlainTextResponse:
        """Prometheus text format: requests and latency per endpoint and stage, ingest, cache hits, answers."""
        return PlainTextResponse(generate_latest(svc.metrics.registry).decode(), media_type="text/plain; version=0.0.4")

    # -- search and answers -------------------------------------------------------------------------
    @app.post("/v1/search", response_model=list[S.Hit], responses=AUTH_ERRORS | {409: _E}, tags=["query"])
    def search(req: S.SearchRequest, p: Principal = Depends(scope("query"))) -> Any:
        """Ranked chunks, the same as `groundwork search --json`, among the documents the key may see."""
        t0 = time.time_ns()
        try:
            hits = svc.kb.search(req.query, req.mode, top_k(req.top_k), req.filter, access=p.access)
        except (GroundworkError, ValueError) as exc:
            raise user_error(exc) from None
        record_pipeline(
            svc.tracer, "groundwork.search", t0, {"total": (time.time_ns() - t0) / 1e6}, {"groundwork.hits": len(hits)}
        )
        return [h.to_dict() for h in hits]

    def answer_for(
        p: Principal,
        question: str,
        mode: str | None,
        k: int | None,
        flt: str | None,
        history: list[dict] | None = None,
        on_token: Any = None,
    ) -> Any:
        t0 = time.time_ns()
        try:
            ans = svc.kb.ask(
                question, mode, top_k(k), flt, history=history, on_token=on_token, caller=p.name, access=p.access
            )
        except (GroundworkError, ValueError) as exc:
            raise user_error(exc) from None
        svc.metrics.observe_answer(ans)
        record_pipeline(
            svc.tracer,
            "groundwork.answer",
            t0,
            ans.timings_ms,
            {"groundwork.answer_id": ans.answer_id, "groundwork.abstained": ans.abstained},
        )
        return ans

    @app.post("/v1/answer", response_model=S.AnswerOut, responses=AUTH_ERRORS | {409: _E}, tags=["query"])
    def answer(req: S.AnswerRequest, p: Principal = Depends(scope("query"))) -> Any:
        """A cited answer (or an abstention), the same as `groundwork ask --json`, with its answer_id."""
        return answer_for(p, req.question, req.mode, req.top_k, req.filter).to_dict()

    from groundwork.serve.openai_compat import register_chat

    register_chat(app, svc, scope, answer_for, AUTH_ERRORS | {409: _E})

    @app.post("/v1/feedback", response_model=S.FeedbackOut, responses=AUTH_ERRORS | {404: _E}, tags=["query"])
    def feedback(req: S.FeedbackIn, p: Principal = Depends(scope("query"))) -> Any:
        """Thumbs up/down and an optional comment on an answer (stored with its audit record)."""
        try:
            svc.kb.audit.get(req.answer_id, p.access)
            svc.kb.audit.add_feedback(req.answer_id, req.rating, req.comment, p.name)
        except AuditNotFound as exc:
            raise ApiError(404, "not_found", str(exc)) from None
        return {"answer_id": req.answer_id, "recorded": True}

    # -- documents and jobs -------------------------------------------------------------------------
    upload_body = {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["files"],
                        "properties": {
                            "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
                            "allowed_groups": {
                                "type": "string",
                                "description": "comma-separated groups that may see the documents",
                            },
                        },
                    }
                },
                "application/json": {
                    "schema": S.RecordsUpload.model_json_schema(ref_template="#/components/schemas/{model}")
                },
            },
        }
    }

    @app.post(
        "/v1/documents",
        status_code=202,
        response_model=S.JobAccepted,
        responses=AUTH_ERRORS | {413: _E},
        openapi_extra=upload_body,
        tags=["documents"],
    )
    async def upload(request: Request, p: Principal = Depends(scope("ingest"))) -> Any:
        """Accept files (multipart) or JSON records; returns a job id at once (the worker ingests).

        The upload is stored durably before this returns, so a server restart does not lose it.
        Documents get the key's tenant, and the given allowed_groups."""
        ctype = request.headers.get("content-type", "")
        files: dict[str, bytes] = {}
        options: dict[str, Any] = {}
        if ctype.startswith("application/json"):
            try:
                body = S.RecordsUpload.model_validate(json.loads(await request.body()))
            except (ValueError, TypeError) as exc:
                raise ApiError(422, "invalid_request", f"records upload: {exc}") from None
            groups = body.allowed_groups
            files[f"{body.name}.jsonl"] = "".join(json.dumps(r) + "\n" for r in body.records).encode()
            options = {
                "text_field": body.text_field,
                "id_field": body.id_field,
                "metadata_fields": body.metadata_fields,
            }
        elif ctype.startswith("multipart/form-data"):
            try:
                form = await request.form()
            except Exception as exc:  # malformed multipart
                raise ApiError(422, "invalid_request", f"could not read the multipart body: {exc}") from None
            groups = [g.strip() for g in str(form.get("allowed_groups") or "").split(",") if g.strip()]
            for item in form.getlist("files"):
                if not hasattr(item, "read"):
                    raise ApiError(422, "invalid_request", "files: each part must be a file")
                name = Path(item.filename or "").name
                if not name or name.startswith("."):
                    raise ApiError(422, "invalid_request", "files: every file needs a name")
                files[name] = await item.read()
            if not files:
                raise ApiError(422, "invalid_request", "files: upload at least one file")
        else:
            raise ApiError(
                415 if ctype else 422,
                "unsupported_media_type",
                "send multipart/form-data files or application/json records",
            )
        from groundwork.types import ACL_NAME

        bad = [g for g in groups if not ACL_NAME.match(g)]
        if bad:
            raise ApiError(422, "invalid_request", f"allowed_groups: invalid group name {bad[0]!r}")
        job = svc.jobs.submit(files, p.name, p.access if not p.access.everything else Access(), groups, options)
        return {"job_id": job.job_id, "status": job.status, "files": job.files}

    @app.get("/v1/jobs/{job_id}", response_model=S.JobOut, responses=AUTH_ERRORS | {404: _E}, tags=["documents"])
    def get_job(job_id: str, p: Principal = Depends(scope("ingest"))) -> Any:
        """Progress (done of total files) and per-file results."""
        job = svc.jobs.get(job_id, p.access)
        if job is None:
            raise ApiError(404, "not_found", f"no job {job_id}")
        return job.to_dict()

    def doc_out(d: Any) -> dict:
        return {
            "doc_id": d.doc_id,
            "source": d.source,
            "title": d.title,
            "chunks": d.chunks,
            "chars": d.chars,
            "type": Path(d.source).suffix.lstrip(".").lower() or "text",
            "tenant": d.tenant,
            "allowed_groups": d.allowed_groups,
            "ingested_at": d.ingested_at,
            "content_hash": d.content_hash,
        }

    @app.get("/v1/documents", response_model=S.DocumentPage, responses=AUTH_ERRORS, tags=["documents"])
    def list_documents(
        offset: int = Query(0, ge=0),
        limit: int = Query(50, ge=1, le=500),
        q: str | None = Query(None, max_length=200, description="substring of the source or title"),
        type: str | None = Query(None, max_length=20, description="file type, e.g. pdf"),  # noqa: A002
        p: Principal = Depends(scope("query")),
    ) -> Any:
        """The documents the key may see, paged, optionally filtered by name and type."""
        docs = svc.kb.documents(p.access)
        if q:
            docs = [d for d in docs if q.lower() in d.source.lower() or q.lower() in d.title.lower()]
        if type:
            docs = [d for d in docs if Path(d.source).suffix.lstrip(".").lower() == type.lower()]
        return {
            "items": [doc_out(d) for d in docs[offset : offset + limit]],
            "total": len(docs),
            "offset": offset,
            "limit": limit,
        }

    def visible_doc(doc_id: str, p: Principal) -> Any:
        for d in svc.kb.documents(p.access):
            if d.doc_id == doc_id:
                return d
        raise ApiError(404, "not_found", f"no document {doc_id}")

    @app.get(
        "/v1/documents/{doc_id:path}",
        response_model=S.DocumentDetail,
        responses=AUTH_ERRORS | {404: _E},
        tags=["documents"],
    )
    def get_document(doc_id: str, p: Principal = Depends(scope("query"))) -> Any:
        """One document and its chunks in order."""
        d = visible_doc(doc_id, p)
        chunks = svc.kb.document_chunks(doc_id, p.access)
        return doc_out(d) | {
            "chunk_list": [
                {"chunk_id": c.chunk_id, "position": c.position, "heading": c.heading, "page": c.page, "text": c.text}
                for c in chunks
            ]
        }

    @app.delete(
        "/v1/documents/{doc_id:path}", response_model=S.Deleted, responses=AUTH_ERRORS | {404: _E}, tags=["documents"]
    )
    def delete_document(doc_id: str, p: Principal = Depends(scope("ingest"))) -> Any:
        """Remove a document from the index (a new index version) and its uploaded file."""
        d = visible_doc(doc_id, p)
        with svc.write_lock:
            svc.kb.delete([doc_id], p.access)
        stored = Path(d.source)
        if stored.is_file() and stored.resolve().is_relative_to(svc.jobs.files.resolve()):
            stored.unlink()
        return {"doc_id": doc_id, "deleted": True, "version": svc.kb.store.current_version()}

    @app.post("/v1/sync", status_code=202, response_model=S.JobAccepted, responses=AUTH_ERRORS, tags=["documents"])
    def sync(p: Principal = Depends(scope("admin"))) -> Any:
        """Re-sync the configured folder sources (serve.sync_paths) as a background job."""
        job = svc.jobs.submit({}, p.name, Access(), [], kind="sync")
        return {"job_id": job.job_id, "status": job.status, "files": [str(x) for x in settings.serve.sync_paths]}

    @app.get("/v1/versions", response_model=list[IndexVersion], responses=AUTH_ERRORS, tags=["documents"])
    def versions(p: Principal = Depends(scope("query"))) -> Any:
        """Index versions. Changed document ids are listed only where the key may see them."""
        visible = None if p.access.everything else {d.doc_id for d in svc.kb.documents(p.access)}
        out = []
        for v in svc.kb.versions():
            d = asdict(v)
            if visible is not None:
                d["changed_doc_ids"] = [x for x in v.changed_doc_ids if x in visible]
            out.append(d)
        return out

    # -- audit ----------------------------------------------------------------------------------------
    @app.get("/v1/audit", response_model=list[S.AuditRecord], responses=AUTH_ERRORS, tags=["admin"])
    def audit_list(
        limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0), p: Principal = Depends(scope("admin"))
    ) -> Any:
        """Recent answers, newest first (an admin key of a tenant sees only that tenant's)."""
        return svc.kb.audit.list(limit, offset, p.access)

    @app.get("/v1/audit/{answer_id}", response_model=S.AuditRecord, responses=AUTH_ERRORS | {404: _E}, tags=["admin"])
    def audit_get(answer_id: str, p: Principal = Depends(scope("admin"))) -> Any:
        """One audit record with its feedback."""
        try:
            return svc.kb.audit.get(answer_id, p.access)
        except AuditNotFound as exc:
            raise ApiError(404, "not_found", str(exc)) from None

    @app.get("/v1/me", response_model=S.Me, responses=AUTH_ERRORS, tags=["query"])
    def me(p: Principal = Depends(scope("query"))) -> Any:
        """The calling key: name, scopes, tenant and groups (what the web page shows and hides)."""
        return {
            "name": p.name,
            "scopes": list(p.scopes),
            "tenant": p.access.tenant,
            "groups": list(p.access.groups),
            "no_auth": p.access.everything,
        }

    @app.get("/v1/eval", response_model=list[S.EvalResult], responses=AUTH_ERRORS, tags=["query"])
    def eval_results(p: Principal = Depends(scope("query"))) -> Any:
        """The latest `groundwork eval` / `eval compare` JSON results in serve.eval_dir, newest first."""
        folder = settings.serve.eval_dir
        if folder is None or not Path(folder).is_dir():
            return []
        out = []
        for f in sorted(Path(folder).glob("*.json"), key=lambda f: f.stat().st_mtime, reverse=True)[:20]:
            try:
                data = json.loads(f.read_text())
            except (OSError, ValueError):
                continue
            if not isinstance(data, dict):
                continue
            compare = bool(data) and all(
                isinstance(v, dict) and any(k in v for k in ("ndcg@10", "hits@10", "containment"))
                for v in data.values()
            )
            single = any(k in data for k in ("ndcg@10", "hits@10", "containment"))
            if not (compare or single):
                continue
            from datetime import datetime

            modified = datetime.fromtimestamp(f.stat().st_mtime, UTC).isoformat(timespec="seconds")
            out.append(
                {
                    "name": f.name,
                    "modified": modified,
                    "kind": "compare" if compare else "single",
                    "results": data if compare else {f.stem: data},
                }
            )
        return out

    from fastapi.staticfiles import StaticFiles

    app.mount("/", StaticFiles(directory=Path(__file__).parent / "web", html=True), name="web")
    return app
