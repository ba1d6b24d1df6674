"""The composition root: every replaceable part of Groundwork is built here, from one Settings object.

Nothing else chooses an implementation by a setting: the store (LanceDB or PostgreSQL), the embedder,
the LLM backend, the generator, the reranker and decomposer, the guardrails, the audit log, and the
service state (API keys, job queue, rate limiter). Each is typed by its protocol, so a caller may
hand in its own (``Components(settings, generator=MyGenerator())``) and the rest is built around it.

Parts are built on first use, so a command that lists versions never loads the embedding model, and
one PostgreSQL connection pool serves the store, the audit log and the service state of a process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from groundwork.answer import ExtractiveGenerator, Generator
from groundwork.answer.cache import AnswerCache, answer_settings_hash
from groundwork.answer.llm import FallbackGenerator, LLMGenerator
from groundwork.config import EmbedderSettings, GeneratorSettings, Settings
from groundwork.errors import ConfigError
from groundwork.guard import ConfiguredGuardrails, Guardrails
from groundwork.index.device import place
from groundwork.index.embedder import Embedder, load_embedder
from groundwork.index.store import MigratableStore, Store
from groundwork.llm.chat import ChatModel
from groundwork.retrieve import Retriever, SearchPipeline
from groundwork.retrieve.cache import CachedSearchPipeline, retrieval_settings_hash
from groundwork.retrieve.decompose import Decomposer, HeuristicDecomposer, LLMDecomposer
from groundwork.retrieve.rerank import CrossEncoderReranker, LLMReranker, MMRReranker, Reranker
from groundwork.state.profiles import Profile, apply_profile
from groundwork.state.protocols import (
    AuditLog,
    ExperimentStore,
    JobQueue,
    KeyStore,
    MonitorStore,
    PendingActions,
    ProfileStore,
    RateLimiter,
    ReviewQueue,
    UsageLog,
)

T = TypeVar("T")
_UNSET: Any = object()

# Part name -> the protocol a supplied part must satisfy (checked eagerly, when it is handed in).
PROTOCOLS: dict[str, type] = {
    "store": Store,
    "embedder": Embedder,
    "chat_model": ChatModel,
    "generator": Generator,
    "guardrails": Guardrails,
    "audit": AuditLog,
    "reviews": ReviewQueue,
    "monitor": MonitorStore,
    "usage": UsageLog,
    "reranker": Reranker,
    "decomposer": Decomposer,
}


def uses_postgres(settings: Settings) -> bool:
    """Whether the index and the service state live in PostgreSQL (``store = "postgres"``)."""
    return settings.store == "postgres"


# -- one part each ----------------------------------------------------------------------------------
def build_embedder(settings: Settings) -> Embedder:
    """The configured sentence-transformers model; its embedding cache sits in the kb folder (or
    ``embedder.cache_dir``). Raises ConfigError for a missing model folder."""
    return load_embedder(settings.embedder, settings.embedder.cache_dir or Path(settings.kb))


def open_pg_pool(settings: Settings, dimension: int):
    """Apply missing migrations (when ``postgres.auto_migrate``) and open this process's pool.
    Raises StoreError when the server is unreachable or the schema is for another dimension."""
    from groundwork.index.pg_schema import make_pool, migrate

    pg = settings.postgres
    if pg.auto_migrate:
        migrate(settings.pg_dsn or "", pg.schema_name, dimension, pg.fts_language)
    return make_pool(settings.pg_dsn or "", pg.schema_name, 1, pg.pool_size)


def build_store(settings: Settings, dimension: Callable[[], int], pg_pool: Callable[[], Any]) -> Store:
    """LanceDB in the kb folder (or ``index.lance_uri``), or PostgreSQL on ``pg_pool()``.
    ``dimension`` is called only for PostgreSQL, whose vector column is typed on first use."""
    if uses_postgres(settings):
        from groundwork.index.postgres import PgStore

        pg = settings.postgres
        return PgStore(pg_pool(), dimension(), settings.index, pg.schema_name, pg.fts_language, settings.pg_dsn or "")
    from groundwork.index.lance import LanceStore

    return LanceStore(settings.index.lance_uri or Path(settings.kb), settings.index)


def build_chat_model(settings: GeneratorSettings) -> ChatModel | None:
    """The configured LLM backend (its library is imported only here), or None for ``extractive``.
    Raises ConfigError when a required setting (model, model_path) is missing."""
    if settings.backend == "extractive":
        return None
    if settings.backend == "openai":
        from groundwork.llm.backends.openai_chat import OpenAIChat

        return OpenAIChat(settings)
    if settings.backend == "bedrock":
        from groundwork.llm.backends.bedrock import BedrockChat

        return BedrockChat(settings)
    from groundwork.llm.backends.local import TransformersChat

    return TransformersChat(settings)


def build_generator(settings: Settings, embedder: Embedder, chat: ChatModel | None) -> Generator:
    """Extractive without an LLM; else the LLM generator, behind the extractive fallback unless
    ``generator.fallback = "none"``."""
    extractive = ExtractiveGenerator(embedder, settings.answer)
    if chat is None:
        return extractive
    g = settings.generator
    llm = LLMGenerator(chat, g.prompt, g.max_tokens)
    return FallbackGenerator(llm, extractive) if g.fallback == "extractive" else llm


def build_reranker(settings: Settings, embedder: Embedder, chat: ChatModel | None) -> Reranker | None:
    """The second-stage reranker of ``rerank.method``, or None. Raises ConfigError when its model is missing."""
    r = settings.rerank
    if r.method == "mmr":
        return MMRReranker(embedder, r.mmr_lambda)
    if r.method == "cross-encoder":
        if r.model_path is None:
            raise ConfigError("rerank.model_path is required for rerank.method = 'cross-encoder'")
        return CrossEncoderReranker(r.model_path, r.batch_size, place(settings.embedder).device)
    if r.method == "llm":
        if chat is None:
            raise ConfigError(
                "rerank.method = 'llm' needs an LLM: set generator.backend (openai, bedrock, transformers)"
            )
        return LLMReranker(chat)
    return None


def build_decomposer(settings: Settings, chat: ChatModel | None) -> Decomposer | None:
    """Multi-hop decomposition of ``retrieval.decompose``; 'llm' without an LLM falls back to the heuristic."""
    d = settings.retrieval.decompose
    if d == "heuristic" or (d == "llm" and chat is None):
        return HeuristicDecomposer()
    if d == "llm":
        return LLMDecomposer(chat)
    return None


def build_answer_cache(settings: Settings, pg_pool: Callable[[], Any], prompt_ref: str | None) -> AnswerCache | None:
    """The answer cache (``cache``): an LRU in front of ``cache.sqlite`` in the kb folder, or of the
    ``answer_cache`` table in PostgreSQL; None when ``cache.enabled`` is off."""
    c = settings.cache
    if not c.enabled:
        return None
    if uses_postgres(settings):
        from groundwork.state.cache import PgAnswerCache

        store: Any = PgAnswerCache(pg_pool(), c.max_entries, c.ttl_s)
    else:
        from groundwork.state.cache import SqliteAnswerCache

        store = SqliteAnswerCache(Path(settings.kb) / "cache.sqlite", c.max_entries, c.ttl_s)
    return AnswerCache(store, answer_settings_hash(settings, prompt_ref), c.max_entries, c.ttl_s)


def build_usage(settings: Settings, pg_pool: Callable[[], Any]) -> UsageLog:
    """``usage.sqlite`` in the kb folder, or the ``usage`` table in PostgreSQL (shared by replicas)."""
    if uses_postgres(settings):
        from groundwork.state.usage import PgUsageLog

        return PgUsageLog(pg_pool())
    from groundwork.state.usage import SqliteUsageLog

    return SqliteUsageLog(Path(settings.kb) / "usage.sqlite")


def build_audit(settings: Settings, pg_pool: Callable[[], Any]) -> AuditLog:
    """``audit.sqlite`` in the kb folder, or the ``audit`` table in PostgreSQL."""
    if uses_postgres(settings):
        from groundwork.state.audit import PgAuditLog

        return PgAuditLog(pg_pool())
    from groundwork.state.audit import SqliteAuditLog

    return SqliteAuditLog(Path(settings.kb) / "audit.sqlite")


def build_reviews(settings: Settings, pg_pool: Callable[[], Any]) -> ReviewQueue:
    """``reviews.sqlite`` in the kb folder, or the ``reviews`` table in PostgreSQL."""
    if uses_postgres(settings):
        from groundwork.state.reviews import PgReviewQueue

        return PgReviewQueue(pg_pool())
    from groundwork.state.reviews import SqliteReviewQueue

    return SqliteReviewQueue(Path(settings.kb) / "reviews.sqlite")


def build_monitor(settings: Settings, pg_pool: Callable[[], Any]) -> MonitorStore:
    """``monitor.sqlite`` in the kb folder, or the ``monitor_runs`` table in PostgreSQL."""
    if uses_postgres(settings):
        from groundwork.state.monitor import PgMonitorStore

        return PgMonitorStore(pg_pool())
    from groundwork.state.monitor import SqliteMonitorStore

    return SqliteMonitorStore(Path(settings.kb) / "monitor.sqlite")


# -- the parts of one knowledge base -----------------------------------------------------------------
class Components:
    """The parts of one knowledge base, each built from ``settings`` on first use unless supplied.

    Args:
        settings: the one settings object.
        **parts: any of ``store``, ``embedder``, ``chat_model``, ``generator``, ``reranker``,
            ``decomposer``, ``search_pipeline``, ``guardrails``, ``audit``, ``reviews``, ``monitor``, ``usage`` to use instead of the
            configured one.
    Raises:
        ConfigError: an unknown part name, or a part that does not implement its protocol.
    """

    def __init__(self, settings: Settings, **parts: Any) -> None:
        self.settings = settings
        unknown = sorted(set(parts) - set(PROTOCOLS) - {"search_pipeline"})
        if unknown:
            raise ConfigError(
                f"unknown component {unknown[0]!r}; known: {', '.join(sorted(PROTOCOLS))}, search_pipeline"
            )
        for name, part in parts.items():
            proto = PROTOCOLS.get(name)
            if part is not None and proto is not None and not isinstance(part, proto):
                raise ConfigError(f"{name}: {type(part).__name__} does not implement the {proto.__name__} protocol")
        self._parts: dict[str, Any] = {k: v for k, v in parts.items() if v is not None}
        self._pg_pool: Any = None
        self._profiles: dict[str, Components] = {}  # profile ref -> its parts (refs are immutable)
        # The server builds parts from several threads at once; each part must be built exactly once
        # (two stores would each see only their own writes). Re-entrant: a part builds its inputs.
        self._lock = threading.RLock()

    def _get(self, name: str, build: Callable[[], T]) -> T:
        if name not in self._parts:
            with self._lock:
                if name not in self._parts:
                    self._parts[name] = build()
        return self._parts[name]

    def built(self, name: str) -> bool:
        """Whether the part ``name`` exists yet (e.g. the embedding model is loaded)."""
        return name in self._parts

    def pg_pool(self) -> Any:
        """This process's PostgreSQL pool (store = "postgres"), opened once and shared."""
        with self._lock:
            if self._pg_pool is None:
                self._pg_pool = open_pg_pool(self.settings, self.embedder.dimension)
        return self._pg_pool

    @property
    def embedder(self) -> Embedder:
        """The sentence-transformers model of ``embedder.model``, with its embedding cache."""
        return self._get("embedder", lambda: build_embedder(self.settings))

    @property
    def store(self) -> Store:
        """LanceDB or PostgreSQL (``store``)."""
        return self._get("store", lambda: build_store(self.settings, lambda: self.embedder.dimension, self.pg_pool))

    @property
    def chat_model(self) -> ChatModel | None:
        """The LLM shared by the generator, the LLM reranker, decomposition and follow-up rewriting."""
        return self._get("chat_model", lambda: build_chat_model(self.settings.generator))

    @property
    def generator(self) -> Generator:
        """Extractive, or the LLM generator (with the extractive fallback)."""
        return self._get("generator", lambda: build_generator(self.settings, self.embedder, self.chat_model))

    @property
    def reranker(self) -> Reranker | None:
        """The reranker of ``rerank.method``, or None."""
        return self._get("reranker", lambda: build_reranker(self.settings, self.embedder, self.chat_model))

    @property
    def decomposer(self) -> Decomposer | None:
        """Multi-hop decomposition of ``retrieval.decompose``, or None."""
        return self._get("decomposer", lambda: build_decomposer(self.settings, self.chat_model))

    @property
    def search_pipeline(self) -> SearchPipeline:
        """Retriever + decomposer + reranker: what every search and answer runs."""

        def build() -> SearchPipeline:
            retriever = Retriever(self.store, self.embedder, self.settings.retrieval)
            plain = SearchPipeline(retriever, self.reranker, self.decomposer, self.settings.rerank.depth)
            c = self.settings.cache
            if not c.enabled:
                return plain
            key = retrieval_settings_hash(self.settings)
            return CachedSearchPipeline(plain, self.store.current_version, key, c.max_entries, c.ttl_s)

        return self._get("search_pipeline", build)

    @property
    def guardrails(self) -> Guardrails:
        """The guardrails of ``guard``."""
        return self._get("guardrails", lambda: ConfiguredGuardrails(self.settings.guard, self.embedder))

    @property
    def answer_cache(self) -> AnswerCache | None:
        """The answer cache of ``cache``, or None when it is off."""

        def build() -> AnswerCache | None:
            prompt = self.generator.prompt
            return build_answer_cache(self.settings, self.pg_pool, prompt.ref if prompt is not None else None)

        return self._get("answer_cache", build)

    @property
    def usage(self) -> UsageLog:
        """Tokens and cost per answer: ``usage.sqlite``, or PostgreSQL's ``usage`` table."""
        return self._get("usage", lambda: build_usage(self.settings, self.pg_pool))

    @property
    def audit(self) -> AuditLog:
        """The audit log: ``audit.sqlite``, or PostgreSQL's ``audit`` table."""
        return self._get("audit", lambda: build_audit(self.settings, self.pg_pool))

    @property
    def reviews(self) -> ReviewQueue:
        """The review queue: ``reviews.sqlite``, or PostgreSQL's ``reviews`` table."""
        return self._get("reviews", lambda: build_reviews(self.settings, self.pg_pool))

    @property
    def monitor(self) -> MonitorStore:
        """The drift monitor's runs: ``monitor.sqlite``, or PostgreSQL's ``monitor_runs`` table."""
        return self._get("monitor", lambda: build_monitor(self.settings, self.pg_pool))

    def for_profile(self, profile: Profile | None) -> Components:
        """The parts that answer with ``profile``'s override (retrieval, answer, generator prompt) applied
        to these settings; ``self`` for None. Built once per profile version and kept: the embedding
        model, store, pool, chat model, reranker, guardrails, audit log, review queue and usage log are
        these same objects; the search pipeline, decomposer, generator and caches are the profile's own
        (the caches' keys hold the profile's settings hash). Raises ProfileError when the
        override does not fit these settings."""
        if profile is None:
            return self
        with self._lock:
            if profile.ref not in self._profiles:
                settings = apply_profile(self.settings, profile.override)
                shared = ("store", "embedder", "audit", "reviews", "usage", "chat_model", "reranker", "guardrails")
                new = Components(settings, **{k: getattr(self, k) for k in shared})
                new._pg_pool = self._pg_pool
                self._profiles[profile.ref] = new
            return self._profiles[profile.ref]

    def with_embedder_model(self, model: str, backend: str | None = None) -> Components:
        """The same store with another embedding model or backend (``reindex``): the embedder and every
        part built on it are new; the store, its pool and the audit log are kept."""
        update = {"model": model} | ({"backend": backend} if backend else {})
        settings = self.settings.model_copy(
            update={"embedder": EmbedderSettings.model_validate(self.settings.embedder.model_dump() | update)}
        )
        kept = {k: self._parts[k] for k in ("store", "audit", "reviews", "chat_model") if k in self._parts}
        new = Components(settings, **kept)
        new._pg_pool = self._pg_pool
        return new

    def with_embedding_cache(self, cache_dir: Path) -> Components:
        """The same knowledge base with its embedding cache (when ``embedder.cache`` is on) in
        ``cache_dir`` instead: the embedder and the parts that embed questions (search pipeline,
        generator, guardrails) are new; the store, its pool, the audit log and the chat model, reranker
        and decomposer built so far are kept. The model is loaded once per process either way.
        Evaluation times new questions on such a copy, with an empty cache."""
        embedder = self.settings.embedder.model_copy(update={"cache_dir": cache_dir})
        # no answer or retrieval cache either: the copy times what a new question costs
        no_cache = self.settings.cache.model_copy(update={"enabled": False})
        settings = self.settings.model_copy(update={"embedder": embedder, "cache": no_cache})
        shared = ("store", "audit", "reviews", "chat_model", "reranker", "decomposer")
        new = Components(settings, **{k: self._parts[k] for k in shared if k in self._parts})
        new._pg_pool = self._pg_pool
        return new


# -- the service state ---------------------------------------------------------------------------------
@dataclass
class ServiceState:
    """What ``groundwork serve`` keeps besides the index: keys, jobs, the rate limiter."""

    keys: KeyStore
    jobs: JobQueue
    limiter: RateLimiter
    profiles: ProfileStore
    experiments: ExperimentStore


def build_service_state(settings: Settings, components: Components) -> ServiceState:
    """SQLite files in the kb folder and an in-process rate limiter; or PostgreSQL tables shared by
    every replica (on the components' pool)."""
    s, root = settings.serve, Path(settings.kb)
    rate, burst = s.rate_per_minute / 60.0, s.rate_burst
    if uses_postgres(settings):
        from groundwork.state.jobs import PgJobQueue
        from groundwork.state.keys import PgKeyStore
        from groundwork.state.ratelimit import PgRateLimiter

        pool = components.pg_pool()
        return ServiceState(
            PgKeyStore(pool),
            PgJobQueue(pool, root, s.job_lease_seconds),
            PgRateLimiter(pool, rate, burst),
            *build_experiment_state(settings, pool),
        )
    from groundwork.state.jobs import SqliteJobQueue
    from groundwork.state.keys import SqliteKeyStore
    from groundwork.state.ratelimit import MemoryRateLimiter

    return ServiceState(
        SqliteKeyStore(root / "keys.sqlite"),
        SqliteJobQueue(root),
        MemoryRateLimiter(rate, burst),
        *build_experiment_state(settings),
    )


def build_experiment_state(settings: Settings, pool: Any = None) -> tuple[ProfileStore, ExperimentStore]:
    """Profiles and experiments: ``experiments.sqlite`` in the kb folder, or PostgreSQL tables shared by
    every replica (on ``pool``, else a small state pool without the chunk store: ``groundwork
    profiles``/``experiment``). Raises StoreError when PostgreSQL is unreachable or not migrated."""
    if uses_postgres(settings):
        from groundwork.index.pg_schema import state_pool
        from groundwork.state.experiments import PgExperimentStore
        from groundwork.state.profiles import PgProfileStore

        pool = pool or state_pool(settings.pg_dsn or "", settings.postgres.schema_name, 2)
        return PgProfileStore(pool), PgExperimentStore(pool)
    from groundwork.state.experiments import SqliteExperimentStore
    from groundwork.state.profiles import SqliteProfileStore

    path = Path(settings.kb) / "experiments.sqlite"
    return SqliteProfileStore(path), SqliteExperimentStore(path)


def build_state_audit(settings: Settings) -> AuditLog:
    """The audit log alone (``groundwork experiment status``), without loading the model or the index."""
    if uses_postgres(settings):
        from groundwork.index.pg_schema import state_pool

        return build_audit(settings, lambda: state_pool(settings.pg_dsn or "", settings.postgres.schema_name, 2))
    return build_audit(settings, lambda: None)


def build_pending_actions(settings: Settings, components: Components) -> PendingActions:
    """Actions waiting for a person's confirmation: ``actions.sqlite`` in the kb folder, or the
    ``pending_actions`` table in PostgreSQL (on the components' pool)."""
    if uses_postgres(settings):
        from groundwork.state.pending import PgPendingActions

        return PgPendingActions(components.pg_pool())
    from groundwork.state.pending import SqlitePendingActions

    return SqlitePendingActions(Path(settings.kb) / "actions.sqlite")


def build_key_store(settings: Settings) -> KeyStore:
    """The key store alone (``groundwork keys``), without loading the model or opening the index.
    Raises StoreError when PostgreSQL is unreachable or its schema is not migrated yet."""
    if uses_postgres(settings):
        from groundwork.index.pg_schema import state_pool
        from groundwork.state.keys import PgKeyStore

        return PgKeyStore(state_pool(settings.pg_dsn or "", settings.postgres.schema_name, 2))
    from groundwork.state.keys import SqliteKeyStore

    return SqliteKeyStore(Path(settings.kb) / "keys.sqlite")


def build_review_queue(settings: Settings) -> ReviewQueue:
    """The review queue alone (``groundwork reviews``), without loading the model or opening the index.
    Raises StoreError when PostgreSQL is unreachable or its schema is not migrated yet."""
    if uses_postgres(settings):
        from groundwork.index.pg_schema import state_pool

        return build_reviews(settings, lambda: state_pool(settings.pg_dsn or "", settings.postgres.schema_name, 2))
    return build_reviews(settings, lambda: None)


def build_usage_log(settings: Settings) -> UsageLog:
    """The usage log alone (``groundwork usage``), without loading the model or opening the index.
    Raises StoreError when PostgreSQL is unreachable or its schema is not migrated yet."""
    if uses_postgres(settings):
        from groundwork.index.pg_schema import state_pool

        return build_usage(settings, lambda: state_pool(settings.pg_dsn or "", settings.postgres.schema_name, 2))
    return build_usage(settings, lambda: None)


def open_store_uri(uri: str, settings: Settings, dimension: int | None = None) -> MigratableStore:
    """A store named by URI, for ``groundwork migrate``: ``lance://FOLDER`` or ``postgres://...``
    (PostgreSQL uses ``postgres.schema_name``; without ``dimension``, the schema's own). Raises
    ConfigError for another scheme, StoreError when the database cannot be read."""
    if uri.startswith("lance://"):
        from groundwork.index.lance import LanceStore

        return LanceStore(Path(uri[len("lance://") :]), settings.index)
    if uri.startswith(("postgres://", "postgresql://")):
        from groundwork.index.pg_schema import schema_dimension
        from groundwork.index.postgres import PgStore

        pg = settings.postgres
        dim = dimension if dimension is not None else schema_dimension(uri, pg.schema_name)
        return PgStore.connect(uri, dim, settings.index, pg.schema_name, pg.fts_language, pg.pool_size)
    raise ConfigError(f"{uri!r}: write lance://FOLDER or postgres://user@host:port/db")
