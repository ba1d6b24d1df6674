"""OpenTelemetry traces and structured JSON logs.

Traces: a span per request (``groundwork.answer`` / ``groundwork.search``) with a child span per
pipeline stage (rewrite, embed, retrieve, rerank, assemble, generate, guard), timed from the stage
timings the pipeline measures. Exported over OTLP/HTTP when ``serve.otlp_endpoint`` (or the standard
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set; otherwise tracing is off (a no-op tracer).

Logs: one JSON object per line with time, level, logger, message and the request id (``X-Request-ID``,
generated when the client sends none). Questions and keys are never logged.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import time
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
STAGES = ("rewrite", "embed", "retrieve", "rerank", "assemble", "generate", "guard")


def make_tracer(endpoint: str | None, exporter: SpanExporter | None = None) -> trace.Tracer:
    """A tracer exporting to ``endpoint`` (or ``exporter``, for tests); a no-op tracer when neither is set."""
    endpoint = endpoint or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if exporter is None and not endpoint:
        return trace.NoOpTracer()
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=endpoint)
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider.get_tracer("groundwork")


def record_pipeline(
    tracer: trace.Tracer, name: str, start_ns: int, timings_ms: dict[str, float], attrs: dict[str, Any]
) -> None:
    """One span for the request and a child per stage, laid end to end from ``start_ns``."""
    end_ns = start_ns + int(timings_ms.get("total", 0.0) * 1e6)
    parent = tracer.start_span(
        name, start_time=start_ns, attributes={**attrs, "groundwork.request_id": request_id.get()}
    )
    ctx = trace.set_span_in_context(parent)
    t = start_ns
    for stage in STAGES:
        ms = timings_ms.get(stage)
        if not ms:
            continue
        span = tracer.start_span(f"groundwork.{stage}", context=ctx, start_time=t)
        t += int(ms * 1e6)
        span.end(end_time=t)
    parent.end(end_time=max(end_ns, t))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": request_id.get(),
        }
        for key in ("method", "path", "status", "ms", "caller"):
            if hasattr(record, key):
                out[key] = getattr(record, key)
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info).splitlines()[-1]
        return json.dumps(out)


def configure_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("groundwork")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
