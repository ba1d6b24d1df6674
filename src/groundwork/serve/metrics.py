"""Prometheus metrics of one server (its own registry, so several apps can live in one process)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class _CacheCollector:
    """Embedding-cache hits, read from the embedder when scraped."""

    def __init__(self, hits: Callable[[], int]) -> None:
        self.hits = hits

    def collect(self) -> Any:
        c = CounterMetricFamily("groundwork_embedding_cache_hits", "texts served from the embedding cache")
        c.add_metric([], float(self.hits()))
        yield c


class _AnswerCacheCollector:
    """Hits and misses of the answer and retrieval caches (``CacheCounter``s), read when scraped;
    ``counters()`` maps the cache's name to its counter (absent while the cache is off or unbuilt)."""

    def __init__(self, counters: Callable[[], dict[str, Any]]) -> None:
        self.counters = counters

    def collect(self) -> Any:
        hits = CounterMetricFamily("groundwork_cache_hits", "requests served from a cache", labels=["cache"])
        misses = CounterMetricFamily("groundwork_cache_misses", "cache lookups that missed", labels=["cache"])
        for name, c in sorted(self.counters().items()):
            hits.add_metric([name], float(c.hits))
            misses.add_metric([name], float(c.misses))
        yield hits
        yield misses


class Metrics:
    def __init__(self, cache_hits: Callable[[], int], caches: Callable[[], dict[str, Any]] = dict) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "groundwork_http_requests", "HTTP requests", ["endpoint", "method", "status"], registry=r
        )
        self.latency = Histogram(
            "groundwork_http_request_seconds", "HTTP request latency (s)", ["endpoint"], buckets=_BUCKETS, registry=r
        )
        self.stage = Histogram(
            "groundwork_pipeline_stage_seconds", "pipeline stage latency (s)", ["stage"], buckets=_BUCKETS, registry=r
        )
        self.ingest_files = Counter("groundwork_ingest_files", "files processed by ingest jobs", ["status"], registry=r)
        self.ingest_chunks = Counter("groundwork_ingest_chunks", "chunks written by ingest jobs", registry=r)
        self.answers = Counter(
            "groundwork_answers", "answers given", ["outcome"], registry=r
        )  # answered|abstained|blocked
        self.guardrails = Counter(
            "groundwork_guardrail_decisions", "guardrail decisions", ["guard", "action"], registry=r
        )
        self.tokens = Counter("groundwork_tokens", "LLM tokens of answers", ["kind"], registry=r)  # prompt|completion
        self.cost = Counter("groundwork_cost_usd", "cost of answers in USD (pricing table)", registry=r)
        r.register(_CacheCollector(cache_hits))
        r.register(_AnswerCacheCollector(caches))

    def observe_answer(self, answer: Any) -> None:
        for stage, ms in answer.timings_ms.items():
            if stage != "total":
                self.stage.labels(stage).observe(ms / 1000)
        self.answers.labels("blocked" if answer.blocked else "abstained" if answer.abstained else "answered").inc()
        for d in answer.guardrails:
            self.guardrails.labels(d.guard, d.action).inc()
        if answer.usage is not None:
            self.tokens.labels("prompt").inc(answer.usage.prompt_tokens)
            self.tokens.labels("completion").inc(answer.usage.completion_tokens)
            self.cost.inc(answer.usage.cost_usd)
