"""KnowledgeBase: the Python API. The CLI and the HTTP server are thin layers over it.

    >>> kb = KnowledgeBase("./.groundwork")
    >>> kb.ingest(["docs/"])                       # IngestReport
    >>> kb.search("how do I filter?", top_k=5)     # list[SearchHit]
    >>> kb.search_documents("how do I filter?")   # list[DocumentHit]: distinct documents, best passages
    >>> kb.ask("how do I filter?")                 # Answer, with [n] citations

Its parts (store, embedder, generator, guardrails, audit log, ...) come from
``groundwork.wiring.Components``; pass any of them to use your own:

    >>> KnowledgeBase("./kb", generator=MyGenerator())
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from groundwork.answer.cache import AnswerCache, answer_key
from groundwork.answer.cost import cost_usd
from groundwork.answer.generator import Generator, TokenCallback
from groundwork.answer.pipeline import AnswerPipeline, Question
from groundwork.config import IngestSettings, Settings, load_settings
from groundwork.errors import ConfigError, RequestError, StoreError
from groundwork.filters import Filter
from groundwork.guard.guardrails import mask_pii_for_ingest
from groundwork.index.check import CheckReport, RepairReport, check_store, repair_store
from groundwork.index.embedder import Embedder
from groundwork.index.store import Store
from groundwork.ingest.chunking import make_chunker
from groundwork.ingest.records import RecordOptions
from groundwork.ingest.sources import SourceItem
from groundwork.ingest.sync import DocumentAcl, Ingestor, ProgressFn
from groundwork.ingest.web.crawl import WebListing, is_web, list_sources
from groundwork.llm.chat import Message
from groundwork.retrieve import SearchPipeline
from groundwork.state.audit import answer_record
from groundwork.state.experiments import Assignment
from groundwork.state.monitor import query_summary
from groundwork.state.protocols import AuditLog, ReviewQueue
from groundwork.state.reviews import open_for_record
from groundwork.state.usage import audit_keys, check_quota, usage_row
from groundwork.types import (
    ACL_NAME,
    ACL_NAME_RULE,
    Access,
    Answer,
    Chunk,
    DocumentHit,
    DocumentInfo,
    IndexVersion,
    IngestReport,
    SearchHit,
    TokenUsage,
)
from groundwork.wiring import Components

ENGINES = ("local", "ray")


class KnowledgeBase:
    """A knowledge base: an index (a folder, or PostgreSQL) and the pipeline over it.

    Args:
        path: the knowledge-base folder (default: ``settings.kb``, i.e. ``./.groundwork`` or ``$GROUNDWORK_KB``).
        settings: full settings; by default loaded from groundwork.toml and the environment.
        components: built parts to use (``groundwork.wiring.Components``); by default built from settings.
        **overrides: dotted setting overrides (``**{"retrieval.top_k": 5}``), or parts by name
            (``store=``, ``embedder=``, ``generator=``, ``guardrails=``, ``audit=``, ...).
    Raises:
        ConfigError: invalid settings, or a supplied part that does not implement its protocol.
        StoreError / ModelMismatchError: on first use of the index.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        settings: Settings | None = None,
        components: Components | None = None,
        **overrides: Any,
    ) -> None:
        dotted = {k: v for k, v in overrides.items() if "." in k}
        parts = {k: v for k, v in overrides.items() if "." not in k}
        if settings is None:
            settings = components.settings if components is not None and not dotted else load_settings(**dotted)
        elif dotted:
            settings = load_settings(**{**_flatten(settings.model_dump()), **dotted})
        if path is not None:
            settings = settings.model_copy(update={"kb": Path(path)})
        self.settings = settings
        self.path = Path(settings.kb)
        self.components = components if components is not None and not parts else Components(settings, **parts)

    # The parts, for callers that use them directly (evaluation, the server, tests).
    @property
    def store(self) -> Store:
        """The chunk store (groundwork.index.store.Store)."""
        return self.components.store

    @property
    def embedder(self) -> Embedder:
        """The embedding model (groundwork.index.embedder.Embedder)."""
        return self.components.embedder

    @property
    def generator(self) -> Generator:
        """The answer generator (groundwork.answer.Generator)."""
        return self.components.generator

    @property
    def audit(self) -> AuditLog:
        """The audit log of answers (groundwork.state.AuditLog)."""
        return self.components.audit

    @property
    def reviews(self) -> ReviewQueue:
        """The review queue (groundwork.state.ReviewQueue)."""
        return self.components.reviews

    @property
    def pipeline(self) -> SearchPipeline:
        """The search pipeline: decomposition, retrieval, fusion, reranking."""
        return self.components.search_pipeline

    def _require_store(self) -> None:
        """Like ``_require_index`` without loading the embedding model (a check needs no vectors)."""
        self.require_existing()

    def _require_index(self) -> None:
        self.require_existing()
        self.store.check_model(self.embedder.model_id, self.embedder.dimension)

    def require_existing(self) -> None:
        """Raise StoreError when nothing was ever ingested here (a mistyped --kb, say)."""
        if not self.store.exists:
            raise StoreError(
                f"no knowledge base at {self.store_location}; check --kb, or run `groundwork ingest PATH` first"
            )

    @property
    def store_location(self) -> str:
        """Where the index is, for messages (the folder, the bucket URI, or the database and schema)."""
        return str(getattr(self.store, "path", self.path))

    # -- ingest -------------------------------------------------------------------------------------
    def ingest(
        self,
        paths: Sequence[str | Path],
        sync: bool = True,
        progress: ProgressFn | None = None,
        text_field: str | None = None,
        id_field: str | None = None,
        metadata_fields: Sequence[str] | None = None,
        tenant: str | None = None,
        title_field: str | None = None,
        allowed_groups: Sequence[str] = (),
        items: Sequence[SourceItem] = (),
        url_lists: Sequence[str | Path] = (),
        engine: str = "local",
        ray_address: str | None = None,
        ray_cpus: int | None = None,
        trusted_metadata: bool = True,
        namespace_ids: bool = False,
        replace_foreign: bool = True,
    ) -> IngestReport:
        """Sync files, folders, ``s3://bucket/prefix`` and web sources (``https://...``: a sitemap or a
        start page to crawl; ``url_lists``: files of URLs; see groundwork.ingest.web), and in-memory
        ``items``, into the index. See groundwork.ingest.sync for the guarantees. Web pages are fetched
        before the writer lock is taken.

        ``engine="ray"`` runs parsing, chunking and embedding as Ray Data stages (``ray_address``: None
        starts a local Ray with ``ray_cpus`` CPUs, "auto" joins a cluster); results equal the local engine's.
        ``tenant`` and ``allowed_groups`` set the access control of every document of this run (unless
        ``ingest.acl_tenant_field`` / ``ingest.acl_groups_field`` map them from record metadata, which
        happens only with ``trusted_metadata``: an upload's records never choose their own tenant).
        ``namespace_ids`` prefixes record ids with their source, ``replace_foreign`` lets a document
        be replaced by one of another owner (see Ingestor; the server turns both to keys' side). The run holds the
        writer lock throughout (``Store.writing``): a second run on the same knowledge base waits for
        it, saying so once on the ``groundwork.index`` logger.
        Raises ConfigError for an unknown engine or an invalid tenant or group name, StoreError when
        the lock is not had within ``index.writer_timeout_s``; a bad file is reported in the report,
        never raised."""
        if engine not in ENGINES:
            raise ConfigError(f"unknown ingest engine {engine!r}: use {' or '.join(ENGINES)}")
        for name in (tenant, *allowed_groups):
            if name is not None and not ACL_NAME.match(name):
                raise ConfigError(f"invalid tenant or group name {name!r}: {ACL_NAME_RULE}")
        s = self.settings.ingest
        records = RecordOptions(
            text_field or s.text_field,
            id_field or s.id_field,
            tuple(metadata_fields or s.metadata_fields),
            title_field=title_field or s.title_field,
        )
        args = (self.store, self.embedder, make_chunker(self.settings.chunking, self.embedder), s, records)
        g = self.settings.guard
        kwargs: dict[str, Any] = {
            "exclude": self.path,
            "text_transform": partial(mask_pii_for_ingest, region=g.pii_region) if g.pii_at_ingest else None,
            "transform_id": f"pii-mask:{g.pii_region}",
            "acl": DocumentAcl(tenant, tuple(allowed_groups), *_acl_fields(s, trusted_metadata)),
            "namespace_ids": namespace_ids,
            "replace_foreign": replace_foreign,
        }
        if engine == "ray":
            from groundwork.ingest.ray_engine import RayIngestor

            ingestor: Ingestor = RayIngestor(
                *args, settings_all=self.settings, address=ray_address, num_cpus=ray_cpus, **kwargs
            )
        else:
            ingestor = Ingestor(*args, **kwargs)
        web = WebListing()
        if any(is_web(p) for p in paths) or url_lists:
            web = list_sources(
                [str(p) for p in paths if is_web(p)],
                [Path(p) for p in url_lists],
                self.settings.web,
                self.path / "web_pages.sqlite",
            )
        sources = [p if str(p).startswith("s3://") else Path(p) for p in paths if not is_web(p)]
        with self.store.writing("ingest"):
            report = ingestor.run(
                sources, sync=sync, progress=progress, items=[*items, *web.items], owned=web.owned, failed=web.failed
            )
        report.not_modified = web.not_modified
        return report

    # -- query --------------------------------------------------------------------------------------
    def search(
        self,
        query: str,
        mode: str | None = None,
        top_k: int | None = None,
        filter: str | Filter | None = None,  # noqa: A002 - the API's name for it
        access: Access | None = None,
    ) -> list[SearchHit]:
        """Ranked chunks for ``query`` (decomposition and reranking as configured), best first;
        ``access`` limits them to what the caller may see (None: all).

        Raises FilterError for a bad filter, RequestError for a bad mode or an empty query,
        StoreError with no index."""
        self._require_index()
        return self.pipeline.search(query, mode, top_k, filter, access).hits

    def search_documents(
        self,
        query: str,
        mode: str | None = None,
        top_k: int | None = None,
        filter: str | Filter | None = None,  # noqa: A002 - the API's name for it
        access: Access | None = None,
    ) -> list[DocumentHit]:
        """Ranked distinct documents for ``query``, best first: ``top_k`` of them when that many match,
        each with its best passages (chunks). The chunks come from the same search as ``search``
        (``access``, filters, reranking), ranked deeper and grouped by document; a document's score is
        its best chunk's score by default (``retrieval.group_score``).

        Raises as ``search`` does."""
        self._require_index()
        return self.pipeline.search_documents(query, mode, top_k, filter, access).documents

    def ask(
        self,
        question: str,
        mode: str | None = None,
        top_k: int | None = None,
        filter: str | Filter | None = None,  # noqa: A002 - the API's name for it
        history: Sequence[Message] | None = None,
        on_token: TokenCallback | None = None,
        caller: str = "cli",
        access: Access | None = None,
        key_id: str | None = None,
        assignment: Assignment | None = None,
    ) -> Answer:
        """Answer ``question`` from the index with ``[n]`` citations, or abstain.

        The steps are those of ``groundwork.answer.pipeline``, unless the answer cache (``cache``)
        holds this question for this access view, settings and index version: then the stored,
        already-guarded answer is served (``cached_from`` names its id; the question's screen runs
        again). Afterwards the audit record and the usage row (tokens, cost) are written (``caller``
        names who asked: a key name, never the key; ``key_id`` its id). ``access`` limits every
        retrieval to the documents the caller may see (None: all). Raises FilterError, RequestError
        and StoreError as ``search`` does (RequestError also for a question over
        ``guard.max_question_chars``); GeneratorError only when the backend fails and
        ``generator.fallback`` is 'none'; ProfileError when the profile does not fit these settings.
        An answer the grounding check flagged opens a review item (``review.low_grounding``).
        ``assignment`` answers with a profile's settings (``Components.for_profile``; its settings are
        in the answer cache's key, so one experiment arm never gets the other's cached answers) and
        names the profile, experiment and arm in the audit record.
        """
        t0 = time.perf_counter()
        limit = self.settings.guard.max_question_chars
        if len(question) > limit:  # a mistake to fix, not a policy refusal
            raise RequestError(
                f"the question has {len(question)} characters; the limit is {limit} (guard.max_question_chars): shorten it"
            )
        self._require_index()
        assignment = assignment or Assignment()
        c = self.components.for_profile(assignment.profile)
        version = self.store.current_version()
        cache, key = c.answer_cache, ""
        if cache is not None:
            s = c.settings
            mode_, k = mode or s.retrieval.mode, top_k or s.answer.top_k
            key = answer_key(question, mode_, k, filter, history, access, cache.settings_hash, version)
        answer = self._from_cache(cache, key, question, on_token) if cache is not None else None
        if answer is None:
            steps = AnswerPipeline(c.search_pipeline, c.generator, c.guardrails, c.chat_model, c.settings.answer)
            answer = steps.run(Question(question, mode, top_k, filter, history, on_token, access), version)
            if answer.usage is not None:
                answer.usage.cost_usd = cost_usd(answer.usage, answer.model_id, self.settings.pricing)
            if cache is not None:
                cache.put(key, answer)
        answer.timings_ms["total"] = (time.perf_counter() - t0) * 1000
        answer.timings_ms = {k: round(v, 2) for k, v in answer.timings_ms.items()}
        if self.settings.audit.enabled:
            self._audit(answer, caller, access, mode or c.settings.retrieval.mode, filter, key_id, assignment)
        return answer

    def _from_cache(self, cache: AnswerCache, key: str, question: str, on_token: TokenCallback | None) -> Answer | None:
        """The cached answer of ``key`` as a new answer (its own id, ``cached_from`` the original's,
        0 tokens), or None on a miss. The question's screen runs on the question as asked now: a
        refused question is never answered from the cache (None: the pipeline refuses it)."""
        t0 = time.perf_counter()
        hit = cache.get(key)
        if hit is None:
            return None
        screened = self.components.guardrails.check_question(question)
        if any(d.action == "blocked" for d in screened):
            return None
        hit.cached_from, hit.answer_id, hit.question = hit.answer_id, uuid.uuid4().hex, question
        hit.guardrails = screened + [d for d in hit.guardrails if d.stage != "input"]
        hit.usage = TokenUsage(source="cached")
        hit.timings_ms = {"cache": (time.perf_counter() - t0) * 1000}
        if on_token is not None:
            on_token(hit.answer)  # released whole: it passed the output guardrails when it was written
        return hit

    def check_quota(self, access: Access | None) -> None:
        """Raise QuotaExceeded when the caller's tenant used its daily token quota (``quota``);
        nothing without a quota. Counted in the usage log every replica writes."""
        q = self.settings.quota
        if q.daily_tokens_per_tenant is None and not q.tenants:
            return
        tenant = access.tenant if access is not None and not access.everything else None
        check_quota(self.components.usage, q, tenant)

    def _audit(
        self,
        answer: Answer,
        caller: str,
        access: Access | None,
        mode: str,
        flt: Any,
        key_id: str | None,
        assignment: Assignment,
    ) -> None:
        """Write the audit record (its question and answer texts with every PII span masked; the
        profile, experiment and arm of ``assignment``), then the usage row of the answer (tokens and
        cost, for ``usage`` and quotas)."""
        text = flt if isinstance(flt, str) or flt is None else str(flt)
        record = answer_record(answer, caller, access, mode, text) | assignment.audit_fields()
        record |= audit_keys(answer)
        redact = self.components.guardrails.redact
        record["question"], record["answer"] = redact(record["question"]), redact(record["answer"])
        record["search_query"] = redact(record["search_query"])
        # For drift monitoring: the top-1 retrieval score, and the searched question's embedding as 8
        # numbers (the embedding cache already holds it: the search just embedded the same text).
        record["top1_score"] = record["retrieved"][0]["score"] if record["retrieved"] else None
        if answer.search_query or answer.question:
            record["query_summary"] = query_summary(self.embedder.embed([answer.search_query or answer.question])[0])
        self.audit.write(record)
        low = [g for g in answer.guardrails if g.guard == "grounding"]
        if low and self.settings.review.low_grounding:  # the grounding check flagged or blocked it
            open_for_record(self.reviews, record, "low_grounding", low[0].detail)
        row = usage_row(answer, caller, key_id, access, record.get("profile"), record["created_at"])
        self.components.usage.record(row)

    # -- model changes ------------------------------------------------------------------------------
    def reindex(self, embedder_model: str | None = None, backend: str | None = None) -> tuple[int, IndexVersion]:
        """Re-embed every chunk with another sentence-transformers model and/or ``embedder.backend``
        (None: the current one; e.g. 'onnx-int8', whose vectors are another model id) as a new index
        version; the old one stays restorable with ``rollback``. Afterwards set ``embedder.model`` /
        ``embedder.backend`` to match: the model check refuses queries with the old one. Returns
        (chunks, version). Raises ConfigError for an unknown backend or model folder."""
        self._require_index()
        try:
            new = self.components.with_embedder_model(embedder_model or self.settings.embedder.model, backend)
        except ValidationError as e:
            raise ConfigError(f"reindex: {e.errors()[0]['loc'][-1]}: {e.errors()[0]['msg']}") from None
        with self.store.writing("reindex"):
            n = self.store.reembed(new.embedder.model_id, new.embedder.dimension, new.embedder.embed)
            docs = [d.doc_id for d in self.store.list_documents()]
            version = self.store.record_version(0, len(docs), 0, docs)
        self.components, self.settings = new, new.settings
        return n, version

    def rollback(self) -> dict[str, Any]:
        """Undo the last ``reindex``: the previous model's vectors and model id come back."""
        with self.store.writing("rollback"):
            prev = self.store.rollback()
            docs = [d.doc_id for d in self.store.list_documents()]
            self.store.record_version(0, len(docs), 0, docs)
        return prev

    # -- inspection ---------------------------------------------------------------------------------
    def documents(self, access: Access | None = None) -> list[DocumentInfo]:
        """The documents ``access`` may see (None: all), sorted by document id."""
        return self.store.list_documents(access)

    def document_chunks(self, doc_id: str, access: Access | None = None) -> list[Chunk]:
        """One document's chunks in order; [] when it does not exist or ``access`` may not see it."""
        return self.store.document_chunks(doc_id, access)

    def delete(self, doc_ids: Sequence[str], access: Access | None = None) -> int:
        """Delete documents the caller may see; returns how many were deleted. Records an index version.
        Holds the writer lock (see ``ingest``)."""
        with self.store.writing("delete"):
            visible = {d.doc_id for d in self.store.list_documents(access)}
            ids = [d for d in doc_ids if d in visible]
            if not ids:
                return 0
            self.store.delete_documents(ids)
            self.store.record_version(0, 0, len(ids), ids)
        return len(ids)

    def sync_changes(self, changed: Sequence[Path], deleted: Sequence[Path], **ingest_args: Any) -> IngestReport:
        """Re-sync changed local paths (``groundwork.ingest.watch.Changes``): ingest the ``changed``
        files and folders (sync: records gone from a records file are deleted), and delete the
        documents of ``deleted`` files and of everything under ``deleted`` folders. ``ingest_args`` as
        for ``ingest``. One index version for the ingest, one for the deletions."""
        report = self.ingest(list(changed), sync=True, **ingest_args) if changed else IngestReport()
        if deleted:
            gone = [str(p) for p in deleted]
            prefixes = tuple(g + "/" for g in gone)
            ids = [d.doc_id for d in self.store.list_documents() if d.source in gone or d.source.startswith(prefixes)]
            report.deleted += self.delete(ids) if ids else 0
        return report

    # -- consistency --------------------------------------------------------------------------------
    def check(self) -> CheckReport:
        """Duplicate chunk ids, orphan chunks (rows of an older version of a document), count and
        statistics mismatches (see groundwork.index.check); reads only. Raises StoreError with no index."""
        self._require_store()
        return check_store(self.store)

    def repair(self) -> RepairReport:
        """``check``, then fix what it found under the writer lock: one row per chunk id, the newest
        version of each document, statistics recounted, an index version recorded for the repair.
        Raises StoreError with no index, or when the lock is not had within ``index.writer_timeout_s``."""
        self._require_store()
        return repair_store(self.store)

    def versions(self) -> list[IndexVersion]:
        """Every index version, oldest first."""
        return self.store.list_versions()

    def count_chunks(self) -> int:
        return self.store.count_chunks()


def _acl_fields(s: IngestSettings, trusted: bool) -> tuple[str | None, str | None]:
    return (s.acl_tenant_field, s.acl_groups_field) if trusted else (None, None)


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out
